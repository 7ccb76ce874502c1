defmodule ShopHash do
  @moduledoc """
  Hashing and checksums in C (c_src/shop_hash.c), loaded as a NIF from this application's priv/.

    * `fnv1a64/1` - 64-bit FNV-1a of an iodata (ETags, cache keys)
    * `luhn_valid?/1` - the Luhn check of a string of ASCII digits (card numbers)
  """

  @on_load :load_nif

  @doc false
  def load_nif do
    path = :shop_hash |> :code.priv_dir() |> Path.join("shop_hash")

    case :erlang.load_nif(String.to_charlist(path), 0) do
      :ok -> :ok
      {:error, {:reload, _}} -> :ok
      {:error, {reason, text}} -> warn(path, reason, text)
    end
  end

  defp warn(path, reason, text) do
    IO.warn("shop_hash: the NIF #{path}.so could not be loaded (#{reason}): #{text}")
    :ok
  end

  @doc "True when the C code is loaded (false: calls raise `:nif_not_loaded`)."
  def loaded? do
    fnv1a64("") == 0xCBF29CE484222325
  rescue
    ErlangError -> false
  end

  @doc "64-bit FNV-1a of `data` (iodata), as a non-negative integer."
  def fnv1a64(_data), do: :erlang.nif_error(:nif_not_loaded)

  @doc "The Luhn check of `digits` (a binary of ASCII digits); raises ArgumentError otherwise."
  def luhn_valid?(_digits), do: :erlang.nif_error(:nif_not_loaded)

  @doc "`fnv1a64/1` as 16 lower-case hex digits."
  def hex(data), do: data |> fnv1a64() |> Integer.to_string(16) |> String.downcase() |> String.pad_leading(16, "0")
end
