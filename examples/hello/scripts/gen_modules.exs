# Generates lib/hello/gen/m001.ex ... mNNN.ex and lib/hello/gen.ex.
#
#     elixir scripts/gen_modules.exs        # 60 modules (the committed set)
#     elixir scripts/gen_modules.exs 200    # any other count
#
# The modules are plain, deterministic source (no randomness between runs), so
# regenerating with the same count reproduces the committed files. Each module
# has a few real functions - pattern matching, a recursive function, a module
# attribute table - and `chain/2` calls the next module, so `/compute` runs
# through all of them. Calls between them are runtime-only dependencies: after
# touching one module, `mix compile` recompiles just that one.

defmodule Hello.GenModules do
  @modulus 1_000_003

  def run(argv) do
    count =
      case argv do
        [] -> 60
        [n] -> String.to_integer(n)
      end

    if count < 1 or count > 999, do: raise(ArgumentError, "count must be 1..999")

    root = Path.expand("..", __DIR__)
    dir = Path.join(root, "lib/hello/gen")
    File.mkdir_p!(dir)

    # Drop modules left over from a larger count.
    for path <- Path.wildcard(Path.join(dir, "m*.ex")),
        index = path |> Path.basename(".ex") |> String.trim_leading("m") |> String.to_integer(),
        index > count,
        do: File.rm!(path)

    for index <- 1..count do
      write(Path.join(dir, "#{name(index)}.ex"), module_source(index, count))
    end

    write(Path.join(root, "lib/hello/gen.ex"), index_source(count))
    IO.puts("generated #{count} modules in #{Path.relative_to(dir, root)}")
  end

  defp write(path, source) do
    formatted = IO.iodata_to_binary([Code.format_string!(source), "\n"])
    File.write!(path, formatted)
  end

  defp name(index), do: "m" <> String.pad_leading(Integer.to_string(index), 3, "0")
  defp module(index), do: "Hello.Gen.M" <> String.pad_leading(Integer.to_string(index), 3, "0")

  # A small linear congruential generator, so the output does not depend on
  # the :rand algorithms of the OTP version running this script.
  defp numbers(seed, count, max) do
    {list, _} =
      Enum.map_reduce(1..count, seed, fn _, state ->
        next = rem(state * 1_103_515_245 + 12_345, 2_147_483_648)
        {rem(div(next, 65_536), max), next}
      end)

    list
  end

  defp module_source(index, count) do
    next = if index == count, do: 1, else: index + 1
    table = numbers(index * 7919, 16, 997)
    [w_zero, w_even, w_odd] = Enum.map(numbers(index * 104_729, 3, 11), &(&1 + 1))
    names = numbers(index * 31, 4, 1_000)

    """
    defmodule #{module(index)} do
      @moduledoc \"\"\"
      Generated module #{index} of #{count} (scripts/gen_modules.exs) - do not edit by hand.
      \"\"\"

      @index #{index}
      @modulus #{@modulus}
      @table {#{Enum.join(table, ", ")}}
      @weights %{zero: #{w_zero}, even: #{w_even}, odd: #{w_odd}}
      @names %{#{names |> Enum.with_index() |> Enum.map(fn {v, i} -> "#{i} => :n#{v}" end) |> Enum.join(", ")}}

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
          {kind, 0, 0} -> "\#{kind}-fizzbuzz-\#{name_of(n)}"
          {kind, 0, _} -> "\#{kind}-fizz"
          {kind, _, 0} -> "\#{kind}-buzz"
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
      def chain(n, depth) when is_integer(depth) and depth > 0, do: #{module(next)}.chain(step(n), depth - 1)
    end
    """
  end

  defp index_source(count) do
    """
    defmodule Hello.Gen do
      @moduledoc \"\"\"
      Index of the generated modules `Hello.Gen.M001` ... `#{module(count)}`
      (scripts/gen_modules.exs) - do not edit by hand.
      \"\"\"

      @doc "How many generated modules there are."
      def count, do: #{count}
    end
    """
  end
end

Hello.GenModules.run(System.argv())
