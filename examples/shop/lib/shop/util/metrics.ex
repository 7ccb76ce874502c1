defmodule Shop.Metrics do
  @moduledoc "Request counters in ETS (`:ets.update_counter/4`, no process in the request path)."

  @table :shop_metrics

  def init, do: :ets.new(@table, [:named_table, :public, :set, write_concurrency: true])

  def observe(method, status, micros) do
    bump({:requests, method, div(status, 100)}, 1)
    bump({:latency_bucket, Shop.Metrics.Buckets.bucket(micros)}, 1)
  end

  def bump(key, by), do: :ets.update_counter(@table, key, by, {key, 0})

  def snapshot do
    @table
    |> :ets.tab2list()
    |> Enum.map(fn {k, v} -> {key(k), v} end)
    |> Map.new()
  end

  defp key(tuple), do: tuple |> Tuple.to_list() |> Enum.map_join(".", &to_string/1)
end

defmodule Shop.Metrics.Buckets do
  @moduledoc "Latency histogram buckets (upper bounds in ms)."
  @bounds [1, 5, 10, 50, 100, 500, 1000]

  def bucket(micros) do
    ms = div(micros, 1000)
    Enum.find(@bounds, "inf", &(ms < &1)) |> to_string()
  end
end

defmodule Shop.Log.Access do
  @moduledoc "One line per request at debug level (method, path, status, duration)."
  require Logger

  def line(req, resp, micros) do
    Logger.debug(fn -> "#{req.peer} #{req.method} #{req.path} #{resp.status} #{div(micros, 1000)}ms" end)
  end
end
