defmodule Shop.Store do
  @moduledoc """
  The shop's durable store: DETS tables in a data directory (`SHOP_DATA_DIR`, else
  `STATE_DIRECTORY` — the app's state directory under systemd or xamal — else
  `<release root>/../shop-data`, or `./shop-data` under Mix). The tables exist once the migrations
  ran (`bin/shop eval Shop.Release.migrate`); the app refuses to start on a store behind its code.
  """

  def data_dir do
    Shop.Util.Env.string("SHOP_DATA_DIR", nil) || state_directory() || default_dir()
  end

  # systemd may pass several, colon-separated (StateDirectory=a b): the first is the app's.
  defp state_directory do
    case Shop.Util.Env.string("STATE_DIRECTORY", nil) do
      nil -> nil
      dirs -> dirs |> String.split(":") |> hd()
    end
  end

  defp default_dir do
    case System.get_env("RELEASE_ROOT") do
      nil -> Path.expand("shop-data")
      root -> Path.expand(Path.join(root, "../shop-data"))
    end
  end

  def path(table), do: Path.join(data_dir(), "#{table}.dets")

  @doc "Runs `fun` with the DETS table `name` open; closes it after."
  def with_table(name, fun) do
    File.mkdir_p!(data_dir())
    {:ok, ref} = :dets.open_file({__MODULE__, name}, file: String.to_charlist(path(name)), type: :set)

    try do
      fun.(ref)
    after
      :dets.close(ref)
    end
  end

  @doc "Opens `name` for the running app (kept open)."
  def open(name) do
    File.mkdir_p!(data_dir())
    :dets.open_file({__MODULE__, name}, file: String.to_charlist(path(name)), type: :set)
  end

  def exists?(name), do: File.exists?(path(name))
end

defmodule Shop.Migrations.Migration do
  @moduledoc "A numbered migration: `version/0`, a description and `up/0`; runs once."
  @callback version() :: pos_integer
  @callback description() :: String.t()
  @callback up() :: :ok
end

defmodule Shop.Migrations do
  @moduledoc "The migrations in order."
  def all, do: [Shop.Migrations.M001CreateMeta, Shop.Migrations.M002CreateOrders, Shop.Migrations.M003CreateCounters, Shop.Migrations.M004OrdersByEmail, Shop.Migrations.M005SeedCoupons]
  def latest, do: all() |> Enum.map(& &1.version()) |> Enum.max()
end

defmodule Shop.Migrations.SchemaVersion do
  @moduledoc "Which migrations ran: `{:applied, version}` rows in the meta table, each with when."
  def applied do
    if Shop.Store.exists?(:meta) do
      Shop.Store.with_table(:meta, fn t -> :dets.match(t, {{:applied, :"$1"}, :_}) |> List.flatten() |> Enum.sort() end)
    else
      []
    end
  end

  def mark(version), do: Shop.Store.with_table(:meta, &:dets.insert(&1, {{:applied, version}, Shop.Util.Clock.now() |> DateTime.to_iso8601()}))

  def current, do: Enum.max(applied(), fn -> 0 end)
end

defmodule Shop.Migrations.Runner do
  @moduledoc "Applies the migrations not yet applied, in order, each marked right after it ran; a second run applies nothing."
  alias Shop.Migrations.{Lock, SchemaVersion}

  def run(migrations, log) do
    Lock.with_lock(fn ->
      done = MapSet.new(SchemaVersion.applied())
      pending = Enum.reject(migrations, &(&1.version() in done))

      for m <- pending do
        :ok = m.up()
        SchemaVersion.mark(m.version())
        log.("migrated #{m.version()}: #{m.description()}")
      end

      if pending == [], do: log.("migrations: nothing to do (at #{SchemaVersion.current()})")
      Enum.map(pending, & &1.version())
    end)
  end
end

defmodule Shop.Migrations.Lock do
  @moduledoc "One migration run at a time per data directory: a lock file created exclusively, removed after."
  def with_lock(fun) do
    File.mkdir_p!(Shop.Store.data_dir())
    path = Path.join(Shop.Store.data_dir(), "migrate.lock")

    case File.open(path, [:write, :exclusive]) do
      {:ok, io} ->
        File.close(io)

        try do
          fun.()
        after
          File.rm(path)
        end

      {:error, :eexist} ->
        raise "another migration holds #{path}; remove it if no migration is running"
    end
  end
end
