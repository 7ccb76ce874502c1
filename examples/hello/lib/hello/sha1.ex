defmodule Hello.SHA1 do
  @moduledoc """
  SHA-1 (FIPS 180-4) in plain Elixir, for the WebSocket handshake only:
  `:crypto` would make the release need the host's libcrypto, which this
  fixture app must not (xamal's target-matrix test relies on it).
  """

  import Bitwise, only: [band: 2, bor: 2, bxor: 2, bnot: 1, bsl: 2, bsr: 2]

  @mask 0xFFFFFFFF

  @doc "The 20-byte SHA-1 digest of `data`."
  def hash(data) when is_binary(data) do
    bits = byte_size(data) * 8
    pad = rem(64 - rem(byte_size(data) + 9, 64), 64)
    message = <<data::binary, 0x80, 0::size(pad)-unit(8), bits::64>>
    init = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}
    {a, b, c, d, e} = blocks(message, init)
    <<a::32, b::32, c::32, d::32, e::32>>
  end

  defp blocks(<<>>, h), do: h

  defp blocks(<<block::binary-size(64), rest::binary>>, {h0, h1, h2, h3, h4} = h) do
    words = for <<w::32 <- block>>, do: w
    {a, b, c, d, e} = words |> Enum.reverse() |> schedule(16) |> Enum.reverse() |> rounds(0, h)
    blocks(rest, {add(h0, a), add(h1, b), add(h2, c), add(h3, d), add(h4, e)})
  end

  # The 80-word schedule, built newest first: w[i-3] is at index 2, w[i-16] at 15.
  defp schedule(rev, 80), do: rev

  defp schedule(rev, i) do
    w =
      rotl(
        bxor(bxor(Enum.at(rev, 2), Enum.at(rev, 7)), bxor(Enum.at(rev, 13), Enum.at(rev, 15))),
        1
      )

    schedule([w | rev], i + 1)
  end

  defp rounds([], _i, h), do: h

  defp rounds([w | ws], i, {a, b, c, d, e}) do
    {f, k} = fk(i, b, c, d)
    t = add(add(add(rotl(a, 5), f), add(e, k)), w)
    rounds(ws, i + 1, {t, a, rotl(b, 30), c, d})
  end

  defp fk(i, b, c, d) when i < 20,
    do: {bor(band(b, c), band(band(bnot(b), @mask), d)), 0x5A827999}

  defp fk(i, b, c, d) when i < 40, do: {bxor(bxor(b, c), d), 0x6ED9EBA1}
  defp fk(i, b, c, d) when i < 60, do: {bor(bor(band(b, c), band(b, d)), band(c, d)), 0x8F1BBCDC}
  defp fk(_i, b, c, d), do: {bxor(bxor(b, c), d), 0xCA62C1D6}

  defp add(x, y), do: band(x + y, @mask)
  defp rotl(x, n), do: band(bor(bsl(x, n), bsr(x, 32 - n)), @mask)
end
