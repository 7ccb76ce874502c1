defmodule Hello.Gen.M051 do
  @moduledoc """
  Generated module 51 of 60 (scripts/gen_modules.exs) - do not edit by hand.
  """

  @index 51
  @modulus 1_000_003
  @table {687, 306, 919, 855, 538, 611, 420, 2, 271, 949, 804, 266, 201, 228, 641, 732}
  @weights %{zero: 10, even: 5, odd: 6}
  @names %{0 => :n746, 1 => :n55, 2 => :n170, 3 => :n635}

  @doc "Classifies an integer."
  def classify(0), do: :zero
  def classify(n) when is_integer(n) and rem(n, 2) == 0, do: :even
  def classify(n) when is_integer(n), do: :odd

  @doc "Looks `n` up in this module's table."
  def lookup(n) when is_integer(n) and n >= 0, do: elem(@table, rem(n, tuple_size(@table)))

  @doc "A name for `n`, from a small attribute map."
  def name_of(n) when is_integer(n) and n >= 0, do: Map.fetch!(@names, rem(n, map_size(@names)))

  @doc "Sums the decimal digits of `n`."
  def digit_sum(n) when is_integer(n) and n >= 0, do: digit_sum(n, 0)

  defp digit_sum(0, acc), do: acc
  defp digit_sum(n, acc), do: digit_sum(div(n, 10), acc + rem(n, 10))

  @doc "Folds a list of non-negative integers through the table."
  def fold(list), do: fold(list, @index)

  defp fold([], acc), do: acc
  defp fold([h | t], acc), do: fold(t, rem(acc * 31 + lookup(h), @modulus))

  @doc "Describes `n` with a few pattern-matching clauses."
  def describe(n) when is_integer(n) and n >= 0 do
    case {classify(n), rem(n, 3), rem(n, 5)} do
      {:zero, _, _} -> "zero"
      {kind, 0, 0} -> "#{kind}-fizzbuzz-#{name_of(n)}"
      {kind, 0, _} -> "#{kind}-fizz"
      {kind, _, 0} -> "#{kind}-buzz"
      {kind, _, _} -> Atom.to_string(kind)
    end
  end

  @doc "One step: mixes `n` with this module's data."
  def step(n) when is_integer(n) and n >= 0 do
    weight = Map.fetch!(@weights, classify(n))
    parts = [n, digit_sum(n), byte_size(describe(n))]
    rem(n * weight + fold(parts) + @index, @modulus)
  end

  @doc "Runs `n` through this module and the next `depth` modules."
  def chain(n, 0), do: step(n)

  def chain(n, depth) when is_integer(depth) and depth > 0,
    do: Hello.Gen.M052.chain(step(n), depth - 1)
end
