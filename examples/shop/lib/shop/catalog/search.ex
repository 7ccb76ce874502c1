defmodule Shop.Catalog do
  @moduledoc "The catalog's API: find, list, search."
  alias Shop.Catalog.{Filter, Search, Sort, Store}

  def get(sku), do: Store.get(sku)
  def get_by_slug(slug), do: Enum.find(Store.all(), &(&1.slug == slug))

  @doc "Products after `opts` (`:q`, `:category`, `:max_cents`, `:tag`, `:sort`)."
  def list(opts \\ %{}) do
    Store.all()
    |> Filter.apply(opts)
    |> Search.apply(Map.get(opts, "q"))
    |> Sort.apply(Map.get(opts, "sort", "name"))
  end
end

defmodule Shop.Catalog.Tokenizer do
  @moduledoc "Words of a text for search: lower case, accents off, stop words out."
  @stop ~w(a an and the of for from in on to with)

  def tokens(nil), do: []

  def tokens(text) do
    text
    |> String.downcase()
    |> String.normalize(:nfd)
    |> String.replace(~r/[^a-z0-9\s]/u, " ")
    |> String.split()
    |> Enum.reject(&(&1 in @stop))
    |> Enum.uniq()
  end
end

defmodule Shop.Catalog.Search do
  @moduledoc "Ranks products by how many query words their name, tags and description match (prefix matches count half)."
  alias Shop.Catalog.Tokenizer

  def apply(products, q) when q in [nil, ""], do: products

  def apply(products, q) do
    words = Tokenizer.tokens(q)

    products
    |> Enum.map(&{score(&1, words), &1})
    |> Enum.filter(fn {s, _} -> s > 0 end)
    |> Enum.sort_by(fn {s, p} -> {-s, p.name} end)
    |> Enum.map(&elem(&1, 1))
  end

  def score(product, words) do
    name = Tokenizer.tokens(product.name)
    rest = Tokenizer.tokens(Enum.join([product.description | product.tags], " "))
    Enum.reduce(words, 0, fn w, acc -> acc + weight(w, name, 4) + weight(w, rest, 1) end)
  end

  defp weight(word, tokens, w) do
    cond do
      word in tokens -> w * 2
      Enum.any?(tokens, &String.starts_with?(&1, word)) -> w
      true -> 0
    end
  end
end

defmodule Shop.Catalog.Filter do
  @moduledoc "Filters from query parameters: `category`, `tag`, `max` (an amount)."

  def apply(products, opts) do
    products
    |> by("category", Map.get(opts, "category"), &(&1.category == &2))
    |> by("tag", Map.get(opts, "tag"), &(&2 in &1.tags))
    |> by("max", max_cents(Map.get(opts, "max")), &(&1.price.cents <= &2))
  end

  defp by(products, _name, nil, _pred), do: products
  defp by(products, _name, "", _pred), do: products
  defp by(products, _name, value, pred), do: Enum.filter(products, &pred.(&1, value))

  defp max_cents(nil), do: nil
  defp max_cents(text) do
    case Shop.Money.Parse.cents(text) do
      {:ok, c} -> c
      _ -> nil
    end
  end
end

defmodule Shop.Catalog.Sort do
  @moduledoc "Orders: `name`, `price`, `-price`; search results keep their rank when sorted by `rank`."
  def apply(products, "price"), do: Enum.sort_by(products, &{&1.price.cents, &1.name})
  def apply(products, "-price"), do: Enum.sort_by(products, &{-&1.price.cents, &1.name})
  def apply(products, "rank"), do: products
  def apply(products, _), do: Enum.sort_by(products, & &1.name)
end
