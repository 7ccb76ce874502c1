defmodule Shop.Validate do
  @moduledoc "Field validations that collect every error (`%{field => message}`)."

  def run(data, checks) do
    errors =
      for {field, check} <- checks, (msg = check.(Map.get(data, field))) != :ok, into: %{} do
        {field, msg}
      end

    if errors == %{}, do: :ok, else: {:error, errors}
  end

  def required(nil), do: "is required"
  def required(""), do: "is required"
  def required(_), do: :ok

  def length(v, min, max) when is_binary(v) do
    n = String.length(v)
    if n >= min and n <= max, do: :ok, else: "expected #{min} to #{max} characters"
  end

  def length(_, _, _), do: "expected text"

  def format(v, re, msg) when is_binary(v), do: if(v =~ re, do: :ok, else: msg)
  def format(_, _, msg), do: msg

  def inclusion(v, allowed), do: if(v in allowed, do: :ok, else: "expected one of #{Enum.join(allowed, ", ")}")

  def integer(v, min, max) when is_integer(v) and v >= min and v <= max, do: :ok
  def integer(_, min, max), do: "expected an integer from #{min} to #{max}"

  def money_positive(%Shop.Money{cents: c}) when c > 0, do: :ok
  def money_positive(_), do: "expected a positive amount"
end

defmodule Shop.Validate.Params do
  @moduledoc "Typed reads of request parameters."

  def integer(params, key, default) do
    case Integer.parse(Map.get(params, key, "")) do
      {n, ""} -> n
      _ -> default
    end
  end

  def string(params, key), do: params |> Map.get(key, "") |> String.trim()
end
