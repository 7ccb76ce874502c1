defmodule Shop.Migrations.M001CreateMeta do
  @moduledoc "The meta table (schema versions, settings)."
  @behaviour Shop.Migrations.Migration
  def version, do: 1
  def description, do: "create meta"
  def up, do: Shop.Store.with_table(:meta, &:dets.insert(&1, {:created_at, Shop.Util.Clock.now() |> DateTime.to_iso8601()}))
end

defmodule Shop.Migrations.M002CreateOrders do
  @moduledoc "The orders table."
  @behaviour Shop.Migrations.Migration
  def version, do: 2
  def description, do: "create orders"
  def up, do: Shop.Store.with_table(:orders, fn _ -> :ok end)
end

defmodule Shop.Migrations.M003CreateCounters do
  @moduledoc "Counters (order numbers), starting at 1000."
  @behaviour Shop.Migrations.Migration
  def version, do: 3
  def description, do: "create counters"
  def up, do: Shop.Store.with_table(:counters, &:dets.insert(&1, {:order_number, 1000}))
end

defmodule Shop.Migrations.M004OrdersByEmail do
  @moduledoc "An index of orders by customer email, filled from the orders already there."
  @behaviour Shop.Migrations.Migration
  def version, do: 4
  def description, do: "index orders by email"

  def up do
    rows = Shop.Store.with_table(:orders, &:dets.foldl(fn {num, o}, acc -> [{o.email, num} | acc] end, [], &1))
    index = Enum.group_by(rows, &elem(&1, 0), &elem(&1, 1))
    Shop.Store.with_table(:orders_by_email, fn t -> Enum.each(index, &:dets.insert(t, &1)) end)
  end
end

defmodule Shop.Migrations.M005SeedCoupons do
  @moduledoc "Records the coupon codes in meta, so an operator sees which the shop accepts."
  @behaviour Shop.Migrations.Migration
  def version, do: 5
  def description, do: "record coupon codes"
  def up do
    codes = Enum.map(Shop.Pricing.Coupons.all(), & &1.code)
    Shop.Store.with_table(:meta, &:dets.insert(&1, {:coupons, codes}))
  end
end

defmodule Shop.Release do
  @moduledoc """
  Tasks a release runs with `bin/shop eval`: `Shop.Release.migrate` (the deploy's release_command)
  and `Shop.Release.status`. They run without starting the app.
  """

  def migrate do
    applied = Shop.Migrations.Runner.run(Shop.Migrations.all(), &IO.puts/1)
    line = "schema #{Shop.Migrations.SchemaVersion.current()}, applied #{if applied == [], do: "none", else: Enum.join(applied, ",")}"
    IO.puts("shop: #{line} in #{Shop.Store.data_dir()}")
    # Each run leaves a line beside the store: an operator (and the deploy tests) see what each deploy applied.
    File.write!(Path.join(Shop.Store.data_dir(), "migrations.log"), "#{Shop.Util.Clock.now() |> DateTime.to_iso8601()} #{line}\n", [:append])
    applied
  end

  def status do
    applied = Shop.Migrations.SchemaVersion.applied()
    for m <- Shop.Migrations.all(), do: IO.puts("#{if m.version() in applied, do: "up  ", else: "down"} #{m.version()} #{m.description()}")
    :ok
  end

  @doc "What the test kit checks after a build: the NIF, the bundle and the migrations."
  def self_check do
    manifest = Shop.Web.Assets.manifest()
    js = Map.get(manifest, "assets/app.js")
    %{nif_loaded: ShopHash.loaded?(), fnv1a64_abc: ShopHash.hex("abc"), bundle: js, bundle_bytes: js && byte_size(File.read!(Path.join(Shop.Http.Static.root(), js))), modules: length(shop_modules())}
  end

  @doc """
  Starts the app on a free loopback port and GETs `paths` over one keep-alive connection; the
  status of each answer and whether the connection stayed open. A smoke test of a built release.
  """
  def http_check(paths) do
    System.put_env("PORT", "0")
    {:ok, _} = Application.ensure_all_started(:shop)
    {:ok, sock} = :gen_tcp.connect({127, 0, 0, 1}, Shop.Http.Listener.port(), [:binary, active: false, packet: :http_bin])
    statuses = Enum.map(paths, &get(sock, &1))
    %{statuses: statuses, connections: DynamicSupervisor.count_children(Shop.Http.ConnSup).active}
  end

  defp get(sock, path) do
    :ok = :inet.setopts(sock, packet: :http_bin)
    :ok = :gen_tcp.send(sock, "GET #{path} HTTP/1.1\r\nhost: localhost\r\n\r\n")
    {:ok, {:http_response, _, status, _}} = :gen_tcp.recv(sock, 0, 5000)
    length = read_headers(sock, 0)
    :ok = :inet.setopts(sock, packet: :raw)
    if length > 0, do: {:ok, _} = :gen_tcp.recv(sock, length, 5000)
    status
  end

  defp read_headers(sock, length) do
    case :gen_tcp.recv(sock, 0, 5000) do
      {:ok, {:http_header, _, :"Content-Length", _, v}} -> read_headers(sock, String.to_integer(v))
      {:ok, {:http_header, _, _, _, _}} -> read_headers(sock, length)
      {:ok, :http_eoh} -> length
    end
  end

  defp shop_modules do
    _ = Application.load(:shop)
    {:ok, mods} = :application.get_key(:shop, :modules)
    mods
  end
end
