defmodule CryptoHello do
  @moduledoc """
  Fixture application for xamal's target matrix: a one-route HTTP server whose
  answer needs OTP's crypto NIF (and so the host's libcrypto).
  """

  @doc "The application version, as reported by `Application.spec/2`."
  def version do
    case Application.spec(:crypto_hello, :vsn) do
      nil -> "unknown"
      vsn -> to_string(vsn)
    end
  end

  @doc """
  The JSON body served by `GET /up`, built by hand (no deps): the SHA-256 of
  `"xamal"`, how many random bytes `:crypto.strong_rand_bytes/1` returned, and
  the OpenSSL the NIF was built against.
  """
  def up_json do
    sha256 = :crypto.hash(:sha256, "xamal") |> Base.encode16(case: :lower)
    random = :crypto.strong_rand_bytes(16)

    IO.iodata_to_binary([
      "{",
      pair("status", "ok"),
      ",",
      pair("app", "crypto_hello"),
      ",",
      pair("version", version()),
      ",",
      pair("otp", to_string(:erlang.system_info(:otp_release))),
      ",",
      pair("openssl", openssl()),
      ",",
      pair("sha256", sha256),
      ",",
      ~s("random_bytes":),
      Integer.to_string(byte_size(random)),
      "}"
    ])
  end

  defp openssl do
    case :crypto.info_lib() do
      [{_name, _number, text} | _] -> to_string(text)
      _ -> "unknown"
    end
  end

  defp pair(key, value), do: [string(key), ":", string(value)]

  defp string(value) do
    escaped = value |> String.replace("\\", "\\\\") |> String.replace("\"", "\\\"")
    [?", escaped, ?"]
  end
end
