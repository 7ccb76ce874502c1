defmodule Shop.Inventory do
  @moduledoc """
  Stock per SKU in ETS. Levels change atomically with `:ets.update_counter/3`; a reservation
  that would take stock below zero is undone and refused. Reservations are all-or-nothing
  across the lines of an order.
  """
  use GenServer

  alias Shop.Inventory.{Ledger, Table}

  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  @impl true
  def init(:ok) do
    Table.create()
    Shop.Inventory.Ledger.create()
    for {sku, qty} <- Shop.Catalog.Seed.stock(), do: Table.set(sku, qty)
    {:ok, %{}}
  end

  defdelegate level(sku), to: Table

  @doc "Takes `qty` of each `{sku, qty}`; `{:error, {:insufficient, sku, available}}` takes nothing."
  def reserve(lines), do: Shop.Inventory.Reservation.reserve(lines)

  def release(lines), do: Enum.each(lines, fn {sku, qty} -> Table.add(sku, qty) && Ledger.record(sku, qty, :release) end)

  def restock(sku, qty) when qty > 0, do: Shop.Inventory.Restock.restock(sku, qty)

  def levels, do: Table.all()
end

defmodule Shop.Inventory.Table do
  @moduledoc "The ETS table of levels: `{sku, quantity}`."
  @table :shop_stock

  def create, do: :ets.new(@table, [:named_table, :public, :set, write_concurrency: true])
  def set(sku, qty), do: :ets.insert(@table, {sku, qty})
  def add(sku, qty), do: :ets.update_counter(@table, sku, qty, {sku, 0})

  def level(sku) do
    case :ets.lookup(@table, sku) do
      [{_, q}] -> q
      [] -> 0
    end
  end

  def all, do: @table |> :ets.tab2list() |> Map.new()
end

defmodule Shop.Inventory.Reservation do
  @moduledoc "All-or-nothing reservation over several SKUs, without a lock: take each, undo on the first shortfall."
  alias Shop.Inventory.{Ledger, Table}

  def reserve(lines), do: take(lines, [])

  defp take([], taken) do
    Enum.each(taken, fn {sku, qty} -> Ledger.record(sku, -qty, :reserve) end)
    :ok
  end

  defp take([{sku, qty} | rest], taken) do
    left = Table.add(sku, -qty)

    if left >= 0 do
      take(rest, [{sku, qty} | taken])
    else
      Table.add(sku, qty)
      Enum.each(taken, fn {s, q} -> Table.add(s, q) end)
      {:error, {:insufficient, sku, left + qty}}
    end
  end
end

defmodule Shop.Inventory.Ledger do
  @moduledoc "Every stock movement, newest first, in a bag table (bounded by `trim/1`)."
  @table :shop_stock_ledger

  def create, do: :ets.new(@table, [:named_table, :public, :duplicate_bag])
  def record(sku, delta, why), do: :ets.insert(@table, {sku, System.system_time(:millisecond), delta, why})
  def for_sku(sku), do: @table |> :ets.lookup(sku) |> Enum.sort_by(&(-elem(&1, 1)))
  def trim(sku), do: sku |> for_sku() |> Enum.drop(100) |> Enum.each(&:ets.delete_object(@table, &1))
end

defmodule Shop.Inventory.Restock do
  @moduledoc "Adds stock and records it."
  def restock(sku, qty) do
    case Shop.Catalog.get(sku) do
      {:ok, _} ->
        level = Shop.Inventory.Table.add(sku, qty)
        Shop.Inventory.Ledger.record(sku, qty, :restock)
        {:ok, level}

      :error ->
        {:error, :unknown_sku}
    end
  end
end

defmodule Shop.Inventory.Availability do
  @moduledoc "Stock as shoppers see it."
  @low 5

  def label(0), do: "sold out"
  def label(n) when n <= @low, do: "only #{n} left"
  def label(_), do: "in stock"

  def low_stock(levels), do: for({sku, q} <- levels, q <= @low, do: sku) |> Enum.sort()
end
