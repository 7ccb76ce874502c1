defmodule Shop.Cart do
  @moduledoc "A cart: lines of SKU and quantity, and an optional coupon code."
  defstruct id: nil, lines: %{}, coupon: nil, region: "DE", updated_at: 0

  alias Shop.Cart.Line

  @max_qty 99

  def new(id), do: %__MODULE__{id: id, updated_at: Shop.Util.Clock.unix()}

  def add(%__MODULE__{} = cart, sku, qty) when qty > 0 do
    with {:ok, product} <- Shop.Catalog.get(sku) do
      line = Map.get(cart.lines, sku, Line.new(product, 0))
      {:ok, touch(%{cart | lines: Map.put(cart.lines, sku, Line.set_qty(line, min(line.qty + qty, @max_qty)))})}
    else
      :error -> {:error, :unknown_sku}
    end
  end

  def set_qty(cart, sku, 0), do: {:ok, touch(%{cart | lines: Map.delete(cart.lines, sku)})}

  def set_qty(cart, sku, qty) when qty > 0 and qty <= @max_qty do
    case Map.fetch(cart.lines, sku) do
      {:ok, line} -> {:ok, touch(%{cart | lines: Map.put(cart.lines, sku, Line.set_qty(line, qty))})}
      :error -> {:error, :not_in_cart}
    end
  end

  def set_qty(_cart, _sku, _qty), do: {:error, :bad_quantity}

  def apply_coupon(cart, code), do: touch(%{cart | coupon: code && String.upcase(code)})
  def set_region(cart, region), do: touch(%{cart | region: region})

  def lines(%__MODULE__{lines: lines}), do: lines |> Map.values() |> Enum.sort_by(& &1.sku)
  def count(cart), do: cart |> lines() |> Enum.map(& &1.qty) |> Enum.sum()
  def empty?(cart), do: cart.lines == %{}

  defp touch(cart), do: %{cart | updated_at: Shop.Util.Clock.unix()}
end

defmodule Shop.Cart.Line do
  @moduledoc "A cart line: the product's price at the time it was added."
  defstruct [:sku, :name, :unit, :qty, :tax_class, :weight_g, :category]

  def new(p, qty), do: %__MODULE__{sku: p.sku, name: p.name, unit: p.price, qty: qty, tax_class: p.tax_class, weight_g: p.weight_g, category: p.category}
  def set_qty(line, qty), do: %{line | qty: qty}
  def total(%__MODULE__{unit: unit, qty: qty}), do: Shop.Money.mult(unit, qty)

  defimpl Shop.Json.Encodable do
    def to_json(l), do: %{sku: l.sku, name: l.name, unit: l.unit, qty: l.qty, total: Shop.Cart.Line.total(l)}
  end
end

defmodule Shop.Cart.Store do
  @moduledoc "Carts in ETS by id; a sweeper drops carts idle longer than the TTL."
  use GenServer

  @table :shop_carts
  @sweep_ms 60_000

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @impl true
  def init(opts) do
    :ets.new(@table, [:named_table, :public, :set, read_concurrency: true, write_concurrency: true])
    Process.send_after(self(), :sweep, @sweep_ms)
    {:ok, %{ttl: Keyword.get(opts, :ttl_seconds, 86_400)}}
  end

  @impl true
  def handle_info(:sweep, state) do
    Shop.Cart.Sweeper.sweep(@table, Shop.Util.Clock.unix() - state.ttl)
    Process.send_after(self(), :sweep, @sweep_ms)
    {:noreply, state}
  end

  def fetch(nil), do: Shop.Cart.new(Shop.Util.Ids.random())

  def fetch(id) do
    case :ets.lookup(@table, id) do
      [{_, cart}] -> cart
      [] -> Shop.Cart.new(Shop.Util.Ids.random())
    end
  end

  def save(cart), do: :ets.insert(@table, {cart.id, cart}) && cart
  def exists?(id), do: :ets.member(@table, id)
  def delete(id), do: :ets.delete(@table, id)
  def count, do: :ets.info(@table, :size)
end

defmodule Shop.Cart.Sweeper do
  @moduledoc "Deletes carts last touched before a cutoff, with a match spec (no copying of carts)."
  def sweep(table, cutoff) do
    spec = [{{:_, %{updated_at: :"$1"}}, [{:<, :"$1", cutoff}], [true]}]
    :ets.select_delete(table, spec)
  end
end

defmodule Shop.Cart.Merge do
  @moduledoc "Merges a guest cart into a customer's when they sign in: quantities add up, the newer coupon wins."
  def merge(into, from) do
    lines = Map.merge(into.lines, from.lines, fn _sku, a, b -> Shop.Cart.Line.set_qty(a, min(a.qty + b.qty, 99)) end)
    %{into | lines: lines, coupon: from.coupon || into.coupon}
  end
end
