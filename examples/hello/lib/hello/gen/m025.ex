defmodule Hello.Gen.M025 do
  @moduledoc """
  Generated module 25 of 60 (scripts/gen_modules.exs) - do not edit by hand.
  """

  @index 25
  @modulus 1_000_003
  @table {550, 135, 978, 666, 370, 69, 378, 742, 497, 323, 14, 918, 805, 197, 1, 977}
  @weights %{zero: 7, even: 3, odd: 9}
  @names %{0 => :n23, 1 => :n613, 2 => :n130, 3 => :n663}

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
    do: Hello.Gen.M026.chain(step(n), depth - 1)
end
