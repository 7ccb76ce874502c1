defmodule Shop.Json.Decoder do
  @moduledoc "JSON text to Elixir terms: objects become maps with string keys, numbers integers or floats."

  alias Shop.Json.{DecodeError, Unicode}

  @max_depth 64

  @doc "`{:ok, term}` or `{:error, %Shop.Json.DecodeError{}}`."
  def decode(text) when is_binary(text) do
    {value, rest} = value(skip(text), text, 0)

    case skip(rest) do
      "" -> {:ok, value}
      _ -> fail(text, rest, "unexpected data after the value")
    end
  catch
    {:json_error, pos, reason} -> {:error, %DecodeError{position: pos, reason: reason}}
  end

  defp value(_rest, text, depth) when depth > @max_depth, do: fail(text, text, "nested deeper than #{@max_depth}")
  defp value("{" <> rest, text, d), do: object(skip(rest), text, d + 1, [])
  defp value("[" <> rest, text, d), do: array(skip(rest), text, d + 1, [])
  defp value("\"" <> rest, text, _d), do: string(rest, text, [])
  defp value("true" <> rest, _text, _d), do: {true, rest}
  defp value("false" <> rest, _text, _d), do: {false, rest}
  defp value("null" <> rest, _text, _d), do: {nil, rest}
  defp value(<<c, _::binary>> = rest, text, _d) when c == ?- or c in ?0..?9, do: Shop.Json.Number.parse(rest, text)
  defp value(rest, text, _d), do: fail(text, rest, "expected a value")

  defp object("}" <> rest, _text, _d, []), do: {%{}, rest}

  defp object("\"" <> rest, text, d, acc) do
    {key, rest} = string(rest, text, [])

    case skip(rest) do
      ":" <> rest ->
        {v, rest} = value(skip(rest), text, d)
        acc = [{key, v} | acc]

        case skip(rest) do
          "," <> rest -> object(skip(rest), text, d, acc)
          "}" <> rest -> {Map.new(acc), rest}
          other -> fail(text, other, "expected , or } in an object")
        end

      other ->
        fail(text, other, "expected : after an object key")
    end
  end

  defp object(rest, text, _d, _acc), do: fail(text, rest, "expected a string key")

  defp array("]" <> rest, _text, _d, []), do: {[], rest}

  defp array(rest, text, d, acc) do
    {v, rest} = value(rest, text, d)

    case skip(rest) do
      "," <> rest -> array(skip(rest), text, d, [v | acc])
      "]" <> rest -> {Enum.reverse([v | acc]), rest}
      other -> fail(text, other, "expected , or ] in an array")
    end
  end

  defp string("\"" <> rest, _text, acc), do: {acc |> Enum.reverse() |> IO.iodata_to_binary(), rest}
  defp string("\\u" <> rest, text, acc) do
    {codepoint, rest} = Unicode.escape(rest, text)
    string(rest, text, [<<codepoint::utf8>> | acc])
  end
  defp string("\\" <> <<c, rest::binary>>, text, acc), do: string(rest, text, [unescape(c, text, rest) | acc])
  defp string(<<c, _::binary>> = rest, text, _acc) when c < 0x20, do: fail(text, rest, "control character in a string")
  defp string(<<c::utf8, rest::binary>>, text, acc), do: string(rest, text, [<<c::utf8>> | acc])
  defp string(rest, text, _acc), do: fail(text, rest, "unterminated string or invalid UTF-8")

  defp unescape(?", _, _), do: "\""
  defp unescape(?\\, _, _), do: "\\"
  defp unescape(?/, _, _), do: "/"
  defp unescape(?b, _, _), do: "\b"
  defp unescape(?f, _, _), do: "\f"
  defp unescape(?n, _, _), do: "\n"
  defp unescape(?r, _, _), do: "\r"
  defp unescape(?t, _, _), do: "\t"
  defp unescape(_c, text, rest), do: fail(text, rest, "unknown escape")

  @doc false
  def skip(<<c, rest::binary>>) when c in [?\s, ?\t, ?\n, ?\r], do: skip(rest)
  def skip(rest), do: rest

  @doc false
  def fail(text, rest, reason), do: throw({:json_error, byte_size(text) - byte_size(rest), reason})
end

defmodule Shop.Json.Number do
  @moduledoc "JSON numbers: `-?int frac? exp?`; integers stay integers."

  @doc "Parses the number at the start of `rest`; `{number, rest}`."
  def parse(rest, text) do
    {int, rest1} = take(rest, &(&1 == ?- or &1 in ?0..?9))
    {frac, rest2} = fraction(rest1)
    {exp, rest3} = exponent(rest2)
    literal = int <> frac <> exp

    cond do
      int in ["", "-"] -> Shop.Json.Decoder.fail(text, rest, "invalid number")
      String.match?(int, ~r/^-?0\d/) -> Shop.Json.Decoder.fail(text, rest, "leading zero in a number")
      frac == "" and exp == "" -> {String.to_integer(int), rest3}
      true -> {float(literal, frac), rest3}
    end
  end

  defp float(literal, ""), do: literal |> String.replace(~r/[eE]/, ".0e", global: false) |> String.to_float()
  defp float(literal, _frac), do: String.to_float(literal)

  defp fraction("." <> rest) do
    {digits, rest} = take(rest, &(&1 in ?0..?9))
    {"." <> digits, rest}
  end

  defp fraction(rest), do: {"", rest}

  defp exponent(<<e, rest::binary>>) when e in [?e, ?E] do
    {digits, rest} = take(rest, &(&1 in ?0..?9 or &1 in [?+, ?-]))
    {"e" <> digits, rest}
  end

  defp exponent(rest), do: {"", rest}

  defp take(bin, pred), do: take(bin, pred, 0)
  defp take(bin, pred, n) do
    case bin do
      <<_::binary-size(n), c, _::binary>> -> if pred.(c), do: take(bin, pred, n + 1), else: split(bin, n)
      _ -> split(bin, n)
    end
  end

  defp split(bin, n), do: {binary_part(bin, 0, n), binary_part(bin, n, byte_size(bin) - n)}
end

defmodule Shop.Json.Unicode do
  @moduledoc "`\\uXXXX` escapes, with UTF-16 surrogate pairs joined."

  @doc "The code point of the escape at the start of `rest` (after `\\u`) and what follows."
  def escape(<<hex::binary-size(4), rest::binary>> = all, text) do
    case hex_value(hex) do
      hi when hi in 0xD800..0xDBFF -> low(rest, hi, text)
      lo when lo in 0xDC00..0xDFFF -> Shop.Json.Decoder.fail(text, all, "lone low surrogate")
      cp when is_integer(cp) -> {cp, rest}
      nil -> Shop.Json.Decoder.fail(text, all, "invalid \\u escape")
    end
  end

  def escape(rest, text), do: Shop.Json.Decoder.fail(text, rest, "short \\u escape")

  defp low("\\u" <> <<hex::binary-size(4), rest::binary>>, hi, text) do
    case hex_value(hex) do
      lo when lo in 0xDC00..0xDFFF -> {0x10000 + (hi - 0xD800) * 0x400 + (lo - 0xDC00), rest}
      _ -> Shop.Json.Decoder.fail(text, rest, "invalid surrogate pair")
    end
  end

  defp low(rest, _hi, text), do: Shop.Json.Decoder.fail(text, rest, "lone high surrogate")

  defp hex_value(hex) do
    case Integer.parse(hex, 16) do
      {v, ""} -> v
      _ -> nil
    end
  end
end
