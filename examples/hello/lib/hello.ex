defmodule Hello do
  @moduledoc """
  Fixture application for xamal: a tiny OTP-only HTTP/1.1 server.

  See `Hello.Application` for the runtime configuration read from the
  environment and `Hello.Router` for the routes.
  """

  @doc "The application version, as reported by `Application.spec/2`."
  def version do
    case Application.spec(:hello, :vsn) do
      nil -> "unknown"
      vsn -> to_string(vsn)
    end
  end

  @doc "The deployed revision (`XAMAL_REVISION`, read at start)."
  def revision do
    Application.get_env(:hello, :revision, "unknown")
  end

  @doc "The JSON body served by `GET /up`, built by hand (no deps)."
  def up_json do
    IO.iodata_to_binary([
      "{",
      json_pair("status", "ok"),
      ",",
      json_pair("app", "hello"),
      ",",
      json_pair("version", version()),
      ",",
      json_pair("revision", revision()),
      ",",
      json_pair("node", Atom.to_string(node())),
      "}"
    ])
  end

  defp json_pair(key, value), do: [json_string(key), ":", json_string(value)]

  @doc "Encodes a binary as a JSON string literal."
  def json_string(value) when is_binary(value) do
    [?", escape(value, []), ?"]
  end

  defp escape(<<>>, acc), do: Enum.reverse(acc)
  defp escape(<<?", rest::binary>>, acc), do: escape(rest, ["\\\"" | acc])
  defp escape(<<?\\, rest::binary>>, acc), do: escape(rest, ["\\\\" | acc])
  defp escape(<<?\n, rest::binary>>, acc), do: escape(rest, ["\\n" | acc])
  defp escape(<<?\r, rest::binary>>, acc), do: escape(rest, ["\\r" | acc])
  defp escape(<<?\t, rest::binary>>, acc), do: escape(rest, ["\\t" | acc])

  defp escape(<<c, rest::binary>>, acc) when c < 0x20 do
    hex = c |> Integer.to_string(16) |> String.pad_leading(4, "0")
    escape(rest, ["\\u" <> hex | acc])
  end

  defp escape(<<c, rest::binary>>, acc), do: escape(rest, [c | acc])
end
