defmodule Hello.Gen do
  @moduledoc """
  Index of the generated modules `Hello.Gen.M001` ... `Hello.Gen.M060`
  (scripts/gen_modules.exs) - do not edit by hand.
  """

  @doc "How many generated modules there are."
  def count, do: 60
end
