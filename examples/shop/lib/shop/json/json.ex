defmodule Shop.Json do
  @moduledoc "JSON (RFC 8259) for the shop's API: `encode!/1` and `decode/1` over the modules below."

  defdelegate encode!(term), to: Shop.Json.Encoder, as: :encode
  defdelegate decode(text), to: Shop.Json.Decoder

  @doc "Decodes or raises `Shop.Json.DecodeError`."
  def decode!(text) do
    case decode(text) do
      {:ok, value} -> value
      {:error, error} -> raise error
    end
  end
end

defmodule Shop.Json.DecodeError do
  @moduledoc "Invalid JSON: where and why."
  defexception [:position, :reason]

  @impl true
  def message(%{position: pos, reason: reason}), do: "invalid JSON at byte #{pos}: #{reason}"
end

defmodule Shop.Json.EncodeError do
  @moduledoc "A term with no JSON form."
  defexception [:term]

  @impl true
  def message(%{term: term}), do: "cannot encode #{inspect(term)} as JSON"
end

defmodule Shop.Json.Escape do
  @moduledoc "String escaping for JSON: quotes, backslashes and control characters; `<`, `>` and `&` as \\u escapes so JSON is safe inside HTML."

  @doc "The escaped body of `string` (without the surrounding quotes), as iodata."
  def escape(string), do: escape(string, [])

  defp escape(<<>>, acc), do: Enum.reverse(acc)
  defp escape(<<c, rest::binary>>, acc) when c in [?", ?\\] or c < 0x20 or c in [?<, ?>, ?&], do: escape(rest, [char(c) | acc])
  defp escape(<<c::utf8, rest::binary>>, acc), do: escape(rest, [<<c::utf8>> | acc])
  defp escape(<<_, rest::binary>>, acc), do: escape(rest, ["\\ufffd" | acc])

  defp char(?"), do: "\\\""
  defp char(?\\), do: "\\\\"
  defp char(?\n), do: "\\n"
  defp char(?\r), do: "\\r"
  defp char(?\t), do: "\\t"
  defp char(c), do: "\\u" <> String.pad_leading(Integer.to_string(c, 16), 4, "0")
end

defmodule Shop.Json.Encoder do
  @moduledoc "Elixir terms to JSON text: maps (atom or string keys), lists, strings, numbers, booleans, nil; structs through `Shop.Json.Encodable`."

  alias Shop.Json.{Encodable, EncodeError, Escape}

  @doc "The JSON text of `term` as a binary; raises `Shop.Json.EncodeError` for what has no JSON form."
  def encode(term), do: term |> iodata() |> IO.iodata_to_binary()

  @doc "The JSON text of `term` as iodata."
  def iodata(nil), do: "null"
  def iodata(true), do: "true"
  def iodata(false), do: "false"
  def iodata(atom) when is_atom(atom), do: string(Atom.to_string(atom))
  def iodata(string) when is_binary(string), do: string(string)
  def iodata(int) when is_integer(int), do: Integer.to_string(int)
  def iodata(float) when is_float(float), do: :erlang.float_to_binary(float, [:short])
  def iodata(list) when is_list(list), do: ["[", list |> Enum.map(&iodata/1) |> Enum.intersperse(","), "]"]
  def iodata(%{__struct__: _} = struct), do: struct |> Encodable.to_json() |> iodata()
  def iodata(map) when is_map(map), do: object(map)
  def iodata(term), do: raise(EncodeError, term: term)

  defp string(s), do: [?", Escape.escape(s), ?"]

  defp object(map) do
    pairs =
      map
      |> Enum.map(fn {k, v} -> {key(k), v} end)
      |> Enum.sort()
      |> Enum.map(fn {k, v} -> [string(k), ":", iodata(v)] end)

    ["{", Enum.intersperse(pairs, ","), "}"]
  end

  defp key(k) when is_binary(k), do: k
  defp key(k) when is_atom(k), do: Atom.to_string(k)
  defp key(k) when is_integer(k), do: Integer.to_string(k)
  defp key(k), do: raise(EncodeError, term: k)
end

defprotocol Shop.Json.Encodable do
  @moduledoc "How a struct becomes JSON: return a map, list or scalar the encoder knows."
  @fallback_to_any true
  def to_json(struct)
end

defimpl Shop.Json.Encodable, for: Any do
  def to_json(%{__struct__: mod} = struct) do
    raise Shop.Json.EncodeError, term: {mod, "no Shop.Json.Encodable implementation", Map.keys(struct)}
  end
end

defimpl Shop.Json.Encodable, for: Date do
  def to_json(date), do: Date.to_iso8601(date)
end

defimpl Shop.Json.Encodable, for: DateTime do
  def to_json(dt), do: DateTime.to_iso8601(dt)
end
