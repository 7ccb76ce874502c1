defmodule Shop.Money do
  @moduledoc "An amount in minor units (cents) of one currency; arithmetic refuses to mix currencies."
  defstruct cents: 0, currency: "EUR"

  @type t :: %__MODULE__{cents: integer, currency: String.t()}

  def new(cents, currency \\ "EUR") when is_integer(cents), do: %__MODULE__{cents: cents, currency: Shop.Currency.check!(currency)}
  def zero(currency \\ "EUR"), do: new(0, currency)

  def add(%__MODULE__{currency: c} = a, %__MODULE__{currency: c} = b), do: %{a | cents: a.cents + b.cents}
  def add(a, b), do: raise(ArgumentError, "cannot add #{a.currency} and #{b.currency}")

  def sub(%__MODULE__{currency: c} = a, %__MODULE__{currency: c} = b), do: %{a | cents: a.cents - b.cents}
  def sub(a, b), do: raise(ArgumentError, "cannot subtract #{b.currency} from #{a.currency}")

  def mult(%__MODULE__{} = m, n) when is_integer(n), do: %{m | cents: m.cents * n}

  @doc "`m` times a rate in basis points (1/100 of a percent), rounded half up."
  def percent(%__MODULE__{} = m, basis_points), do: %{m | cents: Shop.Money.Rounding.half_up(m.cents * basis_points, 10_000)}

  def sum(list, currency \\ "EUR"), do: Enum.reduce(list, zero(currency), &add(&2, &1))
  def min(a, b), do: if(compare(a, b) == :gt, do: b, else: a)
  def max(a, b), do: if(compare(a, b) == :lt, do: b, else: a)
  def negative?(%__MODULE__{cents: c}), do: c < 0
  def zero?(%__MODULE__{cents: c}), do: c == 0

  def compare(%__MODULE__{currency: c, cents: a}, %__MODULE__{currency: c, cents: b}) do
    cond do
      a < b -> :lt
      a > b -> :gt
      true -> :eq
    end
  end

  defimpl String.Chars do
    def to_string(m), do: Shop.Money.Format.format(m)
  end

  defimpl Shop.Json.Encodable do
    def to_json(m), do: %{cents: m.cents, currency: m.currency, formatted: Shop.Money.Format.format(m)}
  end
end

defmodule Shop.Money.Rounding do
  @moduledoc "Integer division with rounding modes, for cents."

  @doc "n / d rounded half away from zero."
  def half_up(n, d) when d > 0 do
    q = div(abs(n) * 2 + d, 2 * d)
    if n < 0, do: -q, else: q
  end

  @doc "n / d rounded half to even (banker's rounding)."
  def half_even(n, d) when d > 0 do
    q = div(n, d)
    r = rem(n, d)

    cond do
      abs(r) * 2 < d -> q
      abs(r) * 2 > d -> q + sign(n)
      rem(q, 2) == 0 -> q
      true -> q + sign(n)
    end
  end

  defp sign(n) when n < 0, do: -1
  defp sign(_), do: 1
end

defmodule Shop.Money.Format do
  @moduledoc "Amounts for people: `€12.50`, `-$3.05`, `CHF 1,234.00`."

  def format(%Shop.Money{cents: cents, currency: currency}) do
    sign = if cents < 0, do: "-", else: ""
    units = abs(cents) |> div(100) |> group()
    minor = abs(cents) |> rem(100) |> Integer.to_string() |> String.pad_leading(2, "0")
    sign <> Shop.Currency.symbol(currency) <> units <> "." <> minor
  end

  defp group(n) do
    n
    |> Integer.to_string()
    |> String.reverse()
    |> String.to_charlist()
    |> Enum.chunk_every(3)
    |> Enum.join(",")
    |> String.reverse()
  end
end

defmodule Shop.Money.Parse do
  @moduledoc "Amounts as people type them (`12`, `12.5`, `12.50`) to cents."

  def cents(text) when is_binary(text) do
    case Regex.run(~r/^\s*(-?)(\d{1,9})(?:\.(\d{1,2}))?\s*$/, text) do
      [_, sign, units] -> {:ok, apply_sign(sign, String.to_integer(units) * 100)}
      [_, sign, units, minor] -> {:ok, apply_sign(sign, String.to_integer(units) * 100 + String.to_integer(String.pad_trailing(minor, 2, "0")))}
      nil -> {:error, "expected an amount like 12.50"}
    end
  end

  defp apply_sign("-", n), do: -n
  defp apply_sign(_, n), do: n
end

defmodule Shop.Currency do
  @moduledoc "The currencies the shop prices in."
  @symbols %{"EUR" => "€", "USD" => "$", "GBP" => "£", "CHF" => "CHF "}

  def all, do: Map.keys(@symbols)
  def symbol(code), do: Map.fetch!(@symbols, code)
  def check!(code), do: if(Map.has_key?(@symbols, code), do: code, else: raise(ArgumentError, "unknown currency #{inspect(code)}"))
end
