defmodule Hello.HTTP do
  @moduledoc """
  Minimal HTTP/1.0 and HTTP/1.1 request-head parser and response encoder.
  """

  # Bound on the request line plus headers, in bytes.
  @max_head 8_192
  # Bodies are read and discarded; refuse anything larger than this.
  @max_body 8_000_000

  @type request :: %{
          method: binary,
          target: binary,
          path: binary,
          query: binary,
          version: :"1.0" | :"1.1",
          headers: [{binary, binary}]
        }

  def max_body, do: @max_body

  @doc """
  Parses the head of the request at the start of `buffer`.

  Returns `{:ok, request, rest}`, `{:more, buffer}` when more bytes are
  needed, or `{:error, status}` when the request must be rejected.
  """
  def parse_head(buffer) do
    buffer = skip_empty_lines(buffer)

    case :binary.match(buffer, "\r\n\r\n") do
      {pos, _} when pos + 4 <= @max_head ->
        <<head::binary-size(pos), "\r\n\r\n", rest::binary>> = buffer

        case parse_lines(String.split(head, "\r\n")) do
          {:ok, request} -> {:ok, request, rest}
          {:error, status} -> {:error, status}
        end

      {_pos, _} ->
        {:error, 431}

      :nomatch ->
        if byte_size(buffer) > @max_head, do: {:error, 431}, else: {:more, buffer}
    end
  end

  # RFC 9112 2.2: ignore at least one empty line before the request line.
  defp skip_empty_lines(<<"\r\n", rest::binary>>), do: skip_empty_lines(rest)
  defp skip_empty_lines(buffer), do: buffer

  defp parse_lines([request_line | header_lines]) do
    with {:ok, method, target, version} <- parse_request_line(request_line),
         {:ok, headers} <- parse_headers(header_lines, []) do
      {path, query} = split_target(target)

      {:ok,
       %{
         method: method,
         target: target,
         path: path,
         query: query,
         version: version,
         headers: headers
       }}
    end
  end

  defp parse_request_line(line) do
    case String.split(line, " ") do
      [method, target, "HTTP/1.1"] -> check_request_line(method, target, :"1.1")
      [method, target, "HTTP/1.0"] -> check_request_line(method, target, :"1.0")
      _ -> {:error, 400}
    end
  end

  defp check_request_line(method, target, version) do
    if token?(method) and valid_target?(target) do
      {:ok, method, target, version}
    else
      {:error, 400}
    end
  end

  defp token?(""), do: false
  defp token?(method), do: for(<<c <- method>>, do: c in ?A..?Z) |> Enum.all?()

  defp valid_target?("*"), do: true
  defp valid_target?(<<"/", rest::binary>>), do: visible?(rest)
  defp valid_target?(_), do: false

  defp visible?(<<>>), do: true
  defp visible?(<<c, rest::binary>>) when c > 0x20 and c < 0x7F, do: visible?(rest)
  defp visible?(_), do: false

  defp parse_headers([], acc), do: {:ok, Enum.reverse(acc)}

  defp parse_headers([line | rest], acc) do
    case :binary.split(line, ":") do
      [name, value] ->
        if token_name?(name) do
          parse_headers(rest, [{String.downcase(name), String.trim(value)} | acc])
        else
          {:error, 400}
        end

      _ ->
        {:error, 400}
    end
  end

  defp token_name?(""), do: false

  defp token_name?(name) do
    for(<<c <- name>>, do: c > 0x20 and c < 0x7F and c != ?:) |> Enum.all?()
  end

  defp split_target(target) do
    case :binary.split(target, "?") do
      [path, query] -> {path, query}
      [path] -> {path, ""}
    end
  end

  @doc "All values of header `name` (lower case)."
  def header_values(%{headers: headers}, name) do
    for {^name, value} <- headers, do: value
  end

  @doc """
  The length of the request body: `{:ok, n}` or `{:error, status}`.
  Chunked request bodies are not supported.
  """
  def body_length(request) do
    case {header_values(request, "transfer-encoding"), header_values(request, "content-length")} do
      {[_ | _], _} ->
        {:error, 501}

      {[], []} ->
        {:ok, 0}

      {[], values} ->
        values
        |> Enum.flat_map(&String.split(&1, ","))
        |> Enum.map(&String.trim/1)
        |> Enum.uniq()
        |> content_length()
    end
  end

  defp content_length([value]) do
    if value != "" and for(<<c <- value>>, do: c in ?0..?9) |> Enum.all?() do
      case String.to_integer(value) do
        n when n > @max_body -> {:error, 413}
        n -> {:ok, n}
      end
    else
      {:error, 400}
    end
  end

  defp content_length(_values), do: {:error, 400}

  @doc "Whether the connection may be kept open after answering `request`."
  def keep_alive?(request) do
    tokens =
      request
      |> header_values("connection")
      |> Enum.flat_map(&String.split(&1, ","))
      |> Enum.map(&(&1 |> String.trim() |> String.downcase()))

    cond do
      "close" in tokens -> false
      request.version == :"1.1" -> true
      true -> "keep-alive" in tokens
    end
  end

  @doc "Whether the client sent `Expect: 100-continue`."
  def expects_continue?(request) do
    request |> header_values("expect") |> Enum.any?(&(String.downcase(&1) == "100-continue"))
  end

  @doc """
  Encodes a response. Always sends `content-length`; omits the body (but not
  its length) when `send_body?` is false, as for `HEAD`.
  """
  def encode_response(status, headers, body, keep_alive?, send_body?) do
    [
      "HTTP/1.1 ",
      Integer.to_string(status),
      " ",
      reason(status),
      "\r\n",
      Enum.map(headers, fn {name, value} -> [name, ": ", value, "\r\n"] end),
      "server: hello\r\n",
      "date: ",
      http_date(),
      "\r\n",
      "content-length: ",
      Integer.to_string(IO.iodata_length(body)),
      "\r\n",
      "connection: ",
      if(keep_alive?, do: "keep-alive", else: "close"),
      "\r\n\r\n",
      if(send_body?, do: body, else: "")
    ]
  end

  defp reason(200), do: "OK"
  defp reason(400), do: "Bad Request"
  defp reason(404), do: "Not Found"
  defp reason(408), do: "Request Timeout"
  defp reason(413), do: "Content Too Large"
  defp reason(426), do: "Upgrade Required"
  defp reason(431), do: "Request Header Fields Too Large"
  defp reason(500), do: "Internal Server Error"
  defp reason(501), do: "Not Implemented"
  defp reason(_), do: "Unknown"

  @days {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
  @months {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

  defp http_date do
    {{year, month, day} = date, {hour, minute, second}} = :calendar.universal_time()
    day_name = elem(@days, :calendar.day_of_the_week(date) - 1)

    [
      day_name,
      ", ",
      pad2(day),
      " ",
      elem(@months, month - 1),
      " ",
      Integer.to_string(year),
      " ",
      pad2(hour),
      ":",
      pad2(minute),
      ":",
      pad2(second),
      " GMT"
    ]
  end

  defp pad2(n), do: n |> Integer.to_string() |> String.pad_leading(2, "0")
end
