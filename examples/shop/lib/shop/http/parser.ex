defmodule Shop.Http.Parser do
  @moduledoc "Reads one request head (request line and headers) from a buffer, with `:erlang.decode_packet/3`."

  alias Shop.Http.{Headers, Limits, Request}

  @doc """
  `{:ok, request, rest}` when the buffer holds a complete head, `:more` when it does not yet,
  `{:error, status}` for a head that cannot be answered (400, 431).
  """
  def parse(buffer) do
    if byte_size(buffer) > Limits.max_header_bytes() and not complete?(buffer) do
      {:error, 431}
    else
      request_line(buffer)
    end
  end

  defp complete?(buffer), do: :binary.match(buffer, "\r\n\r\n") != :nomatch

  defp request_line(buffer) do
    case :erlang.decode_packet(:line, buffer, line_length: Limits.max_header_bytes()) do
      {:ok, line, rest} -> start(String.trim_trailing(line, "\r\n"), rest)
      {:more, _} -> :more
      {:error, _} -> {:error, 400}
    end
  end

  defp start("", rest), do: request_line(rest)

  defp start(line, rest) do
    with [method, target, "HTTP/1." <> minor] <- String.split(line, " "),
         true <- method =~ ~r/^[A-Z]+$/,
         {minor, ""} when minor in [0, 1] <- Integer.parse(minor),
         {:ok, path, query} <- Shop.Http.Target.parse(target) do
      req = %Request{method: method, path: path, segments: segments(path), query: query, version: {1, minor}}
      headers(rest, req, [])
    else
      _ -> {:error, 400}
    end
  end

  defp segments(path), do: String.split(path, "/", trim: true)

  defp headers(buffer, req, acc) do
    case :erlang.decode_packet(:line, buffer, line_length: Limits.max_header_bytes()) do
      {:ok, "\r\n", rest} -> {:ok, %{req | headers: Enum.reverse(acc)}, rest}
      {:ok, line, rest} -> header(String.trim_trailing(line, "\r\n"), rest, req, acc)
      {:more, _} -> :more
      {:error, _} -> {:error, 400}
    end
  end

  defp header(_line, _rest, _req, acc) when length(acc) >= 100, do: {:error, 431}

  defp header(line, rest, req, acc) do
    case Headers.parse_line(line) do
      {:ok, pair} -> headers(rest, req, [pair | acc])
      :error -> {:error, 400}
    end
  end
end

defmodule Shop.Http.Target do
  @moduledoc "The request target: an absolute path and its query string."

  def parse("/" <> _ = target) do
    {path, query} =
      case :binary.split(target, "?") do
        [path, query] -> {path, query}
        [path] -> {path, ""}
      end

    with {:ok, path} <- decode_path(path), do: {:ok, path, Shop.Http.Query.decode(query)}
  end

  def parse(_), do: :error

  defp decode_path(path) do
    decoded = URI.decode(path)
    if String.valid?(decoded) and not String.contains?(decoded, ["\0"]), do: {:ok, decoded}, else: :error
  rescue
    ArgumentError -> :error
  end
end

defmodule Shop.Http.Query do
  @moduledoc "`application/x-www-form-urlencoded` pairs (query strings and form bodies) to a map; the last value of a repeated key wins."

  def decode(""), do: %{}

  def decode(query) do
    query
    |> String.split("&", trim: true)
    |> Enum.reduce(%{}, fn pair, acc ->
      case :binary.split(pair, "=") do
        [k, v] -> put(acc, k, v)
        [k] -> put(acc, k, "")
      end
    end)
  end

  defp put(acc, k, v) do
    Map.put(acc, URI.decode_www_form(k), URI.decode_www_form(v))
  rescue
    ArgumentError -> acc
  end

  @doc "Encodes a map or keyword list as a query string."
  def encode(pairs), do: URI.encode_query(pairs)
end
