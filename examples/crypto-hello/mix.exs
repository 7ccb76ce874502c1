defmodule CryptoHello.MixProject do
  use Mix.Project

  @version "0.1.0"

  # Like examples/hello (no hex dependencies, no NIFs of its own, Elixir 1.10 / OTP 23 up to
  # Elixir 1.18 / OTP 27), but it uses :crypto, so its release ships OTP's crypto NIF and needs the
  # host's OpenSSL (libcrypto.so.1.1 on Debian 11, libcrypto.so.3 on Debian 12 and 13).
  def project do
    [
      app: :crypto_hello,
      version: @version,
      elixir: "~> 1.10",
      start_permanent: Mix.env() == :prod,
      deps: [],
      releases: [
        crypto_hello: [
          include_erts: true,
          include_executables_for: [:unix]
        ]
      ]
    ]
  end

  def application do
    [
      extra_applications: [:logger, :crypto],
      mod: {CryptoHello.Application, []}
    ]
  end
end
