defmodule Hello.Router do
  @moduledoc """
  Routes:

    * `GET /up` - health check, JSON with version and revision
    * `GET /slow?ms=N` - sleeps N ms (at most 60000), then answers `slept N`
    * `GET /compute?n=N` - a number computed through the generated modules
    * `GET /ws` - a WebSocket (`Hello.WebSocket`, handled by `Hello.Conn` before routing)
    * `GET $ERROR_PATH` - 500 on purpose, when that variable is set
    * anything else - 404
  """

  @max_sleep 60_000
  @max_n 1_000_000_000_000

  @text [{"content-type", "text/plain; charset=utf-8"}]

  @doc "Returns `{status, headers, body}` for a parsed request."
  def handle(%{method: method} = request) when method in ["GET", "HEAD"] do
    if error_path?(request.path), do: error(), else: route(request.path, request)
  end

  def handle(_request), do: not_found()

  defp route("/up", _request), do: Hello.Health.response()

  defp route("/slow", request) do
    case int_param(request, "ms", nil) do
      {:ok, ms} when is_integer(ms) and ms >= 0 ->
        ms = min(ms, @max_sleep)
        Process.sleep(ms)
        {200, @text, "slept #{ms}"}

      _ ->
        {400, @text, "ms must be a non-negative integer"}
    end
  end

  defp route("/compute", request) do
    case int_param(request, "n", 10) do
      {:ok, n} when is_integer(n) and n >= 0 and n <= @max_n ->
        {200, @text, Integer.to_string(Hello.Compute.run(n))}

      _ ->
        {400, @text, "n must be an integer between 0 and #{@max_n}"}
    end
  end

  defp route(_path, _request), do: not_found()

  defp not_found, do: {404, @text, "not found"}

  # With `ERROR_PATH` set (read at each request), that path answers 500 on purpose: a release
  # whose health is fine but which fails some requests (xamal's `rollout.max_5xx_percent`).
  defp error_path?(path) do
    case System.get_env("ERROR_PATH") do
      nil -> false
      "" -> false
      p -> p == path
    end
  end

  defp error do
    {500, [{"content-type", "application/json"}], IO.iodata_to_binary(["{", ~s("status":"error","app":"hello","revision":), Hello.json_string(Hello.revision()), "}"])}
  end

  defp int_param(request, name, default) do
    params = URI.decode_query(request.query)

    case Map.fetch(params, name) do
      :error ->
        {:ok, default}

      {:ok, raw} ->
        case Integer.parse(raw) do
          {value, ""} -> {:ok, value}
          _ -> :error
        end
    end
  rescue
    # malformed percent-encoding
    ArgumentError -> :error
  end
end
