defmodule Hello.Health do
  @moduledoc """
  The answer of `GET /up`. With `HEALTH_FAIL_AFTER_MS` set (read at each request; unset: never),
  it fails on purpose once the VM has run that long: 503 with
  `{"status":"failing","app":"hello","revision":"…"}`. A release that sets it (e.g. in
  `rel/env.sh.eex`) passes its health check at boot and fails later: what a watched rollout
  (xamal's `rollout.watch`) must roll back.
  """

  @json [{"content-type", "application/json"}]

  @doc "Returns `{status, headers, body}` for `GET /up`."
  def response do
    if failing?() do
      {503, @json, IO.iodata_to_binary(["{", ~s("status":"failing","app":"hello","revision":), Hello.json_string(Hello.revision()), "}"])}
    else
      {200, @json, Hello.up_json()}
    end
  end

  defp failing? do
    case Integer.parse(System.get_env("HEALTH_FAIL_AFTER_MS") || "") do
      {ms, ""} when ms >= 0 ->
        {uptime_ms, _} = :erlang.statistics(:wall_clock)
        uptime_ms >= ms

      _ ->
        false
    end
  end
end
