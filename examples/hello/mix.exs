defmodule Hello.MixProject do
  use Mix.Project

  @version "0.1.0"

  # Kept compatible with Elixir 1.10 / OTP 23 up to Elixir 1.18 / OTP 27:
  # no hex dependencies, no NIFs, no mix.exs keys newer than Elixir 1.10.
  def project do
    [
      app: :hello,
      version: @version,
      elixir: "~> 1.10",
      start_permanent: Mix.env() == :prod,
      deps: [],
      # The tests start the app themselves, on a port of their own (PORT=0).
      aliases: [test: "test --no-start"],
      releases: [
        hello: [
          include_erts: true,
          include_executables_for: [:unix]
        ]
      ]
    ]
  end

  def application do
    [
      extra_applications: [:logger],
      mod: {Hello.Application, []}
    ]
  end
end
