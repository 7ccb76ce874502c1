defmodule Shop.Util.Ids do
  @moduledoc "Random identifiers: URL-safe, unguessable."
  def random(bytes \\ 12), do: bytes |> :crypto.strong_rand_bytes() |> Base.url_encode64(padding: false)
end

defmodule Shop.Util.Base36 do
  @moduledoc "Integers in base 36 (order numbers people read out)."
  def encode(n) when is_integer(n) and n >= 0, do: n |> Integer.to_string(36) |> String.upcase()
  def decode(text) do
    case Integer.parse(text, 36) do
      {n, ""} when n >= 0 -> {:ok, n}
      _ -> :error
    end
  end
end

defmodule Shop.Util.Clock do
  @moduledoc "Time, in one place so tests and the app agree."
  def now, do: DateTime.utc_now() |> DateTime.truncate(:second)
  def unix, do: System.system_time(:second)
  def today, do: Date.utc_today()
end

defmodule Shop.Util.Text do
  @moduledoc "Small text helpers."
  def truncate(text, max) when byte_size(text) <= max, do: text
  def truncate(text, max), do: String.slice(text, 0, max - 1) <> "…"
  def blank?(nil), do: true
  def blank?(text), do: String.trim(text) == ""
  def pluralize(1, word), do: "1 #{word}"
  def pluralize(n, word), do: "#{n} #{word}s"
end

defmodule Shop.Util.Slug do
  @moduledoc "Names to URL slugs: `Blue Mug (Large)` → `blue-mug-large`."
  def slugify(name) do
    name
    |> String.downcase()
    |> String.normalize(:nfd)
    |> String.replace(~r/[^a-z0-9\s-]/u, "")
    |> String.split(~r/[\s-]+/, trim: true)
    |> Enum.join("-")
  end
end

defmodule Shop.Util.Env do
  @moduledoc "Typed reads of environment variables, with errors naming the variable."

  def string(name, default) do
    case System.get_env(name) do
      nil -> default
      "" -> default
      v -> v
    end
  end

  def integer(name, default, min, max) do
    raw = string(name, nil)

    case raw && Integer.parse(String.trim(raw)) do
      nil -> default
      {v, ""} when v >= min and v <= max -> v
      _ -> raise ArgumentError, "#{name} must be an integer between #{min} and #{max}, got: #{inspect(raw)}"
    end
  end

  def ip(name, default) do
    raw = string(name, default)

    case :inet.parse_address(String.to_charlist(raw)) do
      {:ok, ip} -> ip
      {:error, _} -> raise ArgumentError, "#{name} must be an IP address, got: #{inspect(raw)}"
    end
  end
end

defmodule Shop.Util.Pages do
  @moduledoc "Pagination of a list: page numbers from 1, a bounded page size."
  defstruct entries: [], page: 1, per_page: 12, total: 0

  def paginate(list, page, per_page) do
    page = max(page, 1)
    per_page = per_page |> max(1) |> min(100)
    %__MODULE__{entries: list |> Enum.drop((page - 1) * per_page) |> Enum.take(per_page), page: page, per_page: per_page, total: length(list)}
  end

  def pages(%__MODULE__{total: t, per_page: p}), do: max(div(t + p - 1, p), 1)
  def next?(%__MODULE__{} = pg), do: pg.page < pages(pg)
  def prev?(%__MODULE__{page: page}), do: page > 1
end
