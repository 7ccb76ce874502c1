defmodule Shop.Http.Request do
  @moduledoc "A parsed HTTP/1.1 request as the router sees it."
  defstruct method: "GET", path: "/", segments: [], query: %{}, version: {1, 1}, headers: [], body: "", params: %{}, assigns: %{}, peer: nil

  @type t :: %__MODULE__{}

  @doc "The value of header `name` (lower case), or `default`."
  def header(%__MODULE__{headers: headers}, name, default \\ nil), do: Shop.Http.Headers.get(headers, name, default)

  @doc "Stores `value` under `key` for later plugs and handlers."
  def assign(%__MODULE__{} = req, key, value), do: %{req | assigns: Map.put(req.assigns, key, value)}
end

defmodule Shop.Http.Response do
  @moduledoc "What a handler answers: status, headers, body (iodata)."
  defstruct status: 200, headers: [], body: ""

  @type t :: %__MODULE__{}

  def new(status, content_type, body), do: %__MODULE__{status: status, headers: [{"content-type", content_type}], body: body}
  def text(status, body), do: new(status, "text/plain; charset=utf-8", body)
  def html(status, body), do: new(status, "text/html; charset=utf-8", body)
  def json(status, term), do: new(status, "application/json", Shop.Json.encode!(term))

  @doc "A redirect (303 by default, so a POST form lands on a GET)."
  def redirect(location, status \\ 303), do: %__MODULE__{status: status, headers: [{"location", location}], body: ""}

  def put_header(%__MODULE__{} = r, name, value), do: %{r | headers: Shop.Http.Headers.put(r.headers, name, value)}
end

defmodule Shop.Http.Headers do
  @moduledoc "Header lists: names lower case, values trimmed; lookups and replacement."

  def get(headers, name, default \\ nil) do
    case List.keyfind(headers, name, 0) do
      {_, value} -> value
      nil -> default
    end
  end

  def put(headers, name, value), do: List.keystore(headers, String.downcase(name), 0, {String.downcase(name), value})

  @doc "Comma-separated tokens of a header value, lower case (`Connection: keep-alive, Upgrade`)."
  def tokens(nil), do: []
  def tokens(value), do: value |> String.split(",") |> Enum.map(&(&1 |> String.trim() |> String.downcase())) |> Enum.reject(&(&1 == ""))

  @doc "Parses one `Name: value` line."
  def parse_line(line) do
    case :binary.split(line, ":") do
      [name, value] when name != "" -> if valid_name?(name), do: {:ok, {String.downcase(name), String.trim(value)}}, else: :error
      _ -> :error
    end
  end

  defp valid_name?(name), do: name =~ ~r/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
end

defmodule Shop.Http.Status do
  @moduledoc "Reason phrases of the status codes the shop answers with."
  @reasons %{
    200 => "OK", 201 => "Created", 204 => "No Content", 206 => "Partial Content",
    301 => "Moved Permanently", 303 => "See Other", 304 => "Not Modified",
    400 => "Bad Request", 404 => "Not Found", 405 => "Method Not Allowed", 409 => "Conflict",
    413 => "Content Too Large", 415 => "Unsupported Media Type", 422 => "Unprocessable Content",
    431 => "Request Header Fields Too Large", 500 => "Internal Server Error", 503 => "Service Unavailable"
  }

  def reason(code), do: Map.get(@reasons, code, "Status #{code}")
end

defmodule Shop.Http.Limits do
  @moduledoc "Bounds on what a client may send."
  def max_header_bytes, do: 16_384
  def max_headers, do: 100
  def max_body_bytes, do: 1_048_576
  def idle_timeout_ms, do: 30_000
  def max_requests_per_connection, do: 10_000
end
