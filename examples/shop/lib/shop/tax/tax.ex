defmodule Shop.Tax do
  @moduledoc """
  VAT per line, after its share of the discount, by the line's tax class and the cart's region;
  shipping is taxed at the standard rate. Prices are net (tax is added), rounded per line half up.
  """
  alias Shop.Tax.{Line, Rates}

  def compute(lines, discounts_per_line, shipping, region) do
    taxed =
      for {line, discount} <- Enum.zip(lines, discounts_per_line) do
        base = Shop.Money.sub(Shop.Cart.Line.total(line), discount)
        Line.new(line.sku, line.tax_class, base, Rates.rate(region, line.tax_class))
      end

    taxed ++ [Line.new("shipping", :standard, shipping, Rates.rate(region, :standard))]
  end
end

defmodule Shop.Tax.Line do
  @moduledoc "Tax on one base amount."
  defstruct [:ref, :class, :base, :rate_bp, :amount]

  def new(ref, class, base, rate_bp), do: %__MODULE__{ref: ref, class: class, base: base, rate_bp: rate_bp, amount: Shop.Money.percent(base, rate_bp)}

  defimpl Shop.Json.Encodable do
    def to_json(l), do: %{ref: l.ref, class: l.class, base: l.base, rate: Shop.Tax.Rates.format(l.rate_bp), amount: l.amount}
  end
end

defmodule Shop.Tax.Class do
  @moduledoc "Tax classes of products."
  def all, do: [:standard, :reduced, :zero]
end

defmodule Shop.Tax.Region do
  @moduledoc "Regions the shop ships to and taxes for."
  @regions %{"DE" => "Germany", "FR" => "France", "NL" => "Netherlands", "CH" => "Switzerland"}
  def all, do: @regions |> Map.keys() |> Enum.sort()
  def name(code), do: Map.get(@regions, code, code)
  def valid?(code), do: Map.has_key?(@regions, code)
end

defmodule Shop.Tax.Rates do
  @moduledoc "VAT rates in basis points by region and class."
  @rates %{
    "DE" => %{standard: 1900, reduced: 700, zero: 0},
    "FR" => %{standard: 2000, reduced: 550, zero: 0},
    "NL" => %{standard: 2100, reduced: 900, zero: 0},
    "CH" => %{standard: 810, reduced: 260, zero: 0}
  }

  def rate(region, class), do: @rates |> Map.get(region, @rates["DE"]) |> Map.fetch!(class)

  def format(bp) do
    whole = div(bp, 100)
    frac = rem(bp, 100)
    if frac == 0, do: "#{whole}%", else: "#{whole}.#{frac |> Integer.to_string() |> String.trim_trailing("0")}%"
  end
end

defmodule Shop.Tax.Allocation do
  @moduledoc "Splits a cart discount across lines in proportion to their totals (largest remainder, so the parts add up exactly)."
  alias Shop.Money

  def allocate(%Money{cents: 0} = zero, lines), do: Enum.map(lines, fn _ -> zero end)

  def allocate(%Money{cents: d, currency: cur}, lines) do
    totals = Enum.map(lines, &Shop.Cart.Line.total(&1).cents)
    sum = Enum.sum(totals)
    raw = Enum.map(totals, &{div(&1 * d, sum), rem(&1 * d, sum)})
    short = d - (raw |> Enum.map(&elem(&1, 0)) |> Enum.sum())

    bonus =
      raw
      |> Enum.with_index()
      |> Enum.sort_by(fn {{_, r}, i} -> {-r, i} end)
      |> Enum.take(short)
      |> MapSet.new(fn {_, i} -> i end)

    raw |> Enum.with_index() |> Enum.map(fn {{q, _}, i} -> Money.new(q + if(i in bonus, do: 1, else: 0), cur) end)
  end
end

defmodule Shop.Tax.Summary do
  @moduledoc "Tax lines grouped by rate, for the invoice; the total added to the net."
  def exclusive(tax_lines), do: tax_lines |> Enum.map(& &1.amount) |> Shop.Money.sum()

  def by_rate(tax_lines) do
    tax_lines
    |> Enum.group_by(& &1.rate_bp)
    |> Enum.map(fn {bp, ls} -> {Shop.Tax.Rates.format(bp), ls |> Enum.map(& &1.amount) |> Shop.Money.sum()} end)
    |> Enum.sort()
  end
end
