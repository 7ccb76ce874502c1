defmodule Hello.Compute do
  @moduledoc """
  Entry point into the generated modules (`lib/hello/gen/`): a value is passed
  through every one of them, so they are all loaded and really used.
  """

  @doc "Runs `n` through the chain of all generated modules."
  def run(n) when is_integer(n) and n >= 0 do
    Hello.Gen.M001.chain(n, Hello.Gen.count() - 1)
  end
end
