defmodule Shop.Orders.SchemaCheck do
  @moduledoc "The app starts only on a store its migrations brought up to date."
  def check! do
    current = Shop.Migrations.SchemaVersion.current()
    latest = Shop.Migrations.latest()
    Application.put_env(:shop, :schema, current)

    if current < latest do
      raise "shop: the store in #{Shop.Store.data_dir()} is at schema version #{current}, the code needs #{latest}: run `bin/shop eval Shop.Release.migrate` first"
    end
  end
end

defmodule Shop.Orders.Order do
  @moduledoc "A placed order: the priced lines, address, payment reference and state."
  defstruct [:number, :email, :address, :breakdown, :payment, :placed_at, state: :placed, history: []]

  defimpl Shop.Json.Encodable do
    def to_json(o) do
      %{number: o.number, email: o.email, address: o.address, total: o.breakdown.total, lines: o.breakdown.lines, state: o.state, placed_at: o.placed_at, payment: Map.take(o.payment, [:id, :brand, :last4])}
    end
  end
end

defmodule Shop.Orders.Number do
  @moduledoc "Order numbers people read out: `SO-` and the counter in base 36 with a check letter."
  @letters ~c"ABCDEFGHJKLMNPQRSTUVWXYZ"

  def format(n) do
    body = Shop.Util.Base36.encode(n)
    "SO-" <> body <> <<Enum.at(@letters, rem(ShopHash.fnv1a64(body), length(@letters)))>>
  end

  def valid?("SO-" <> rest) when byte_size(rest) >= 2 do
    {body, check} = String.split_at(rest, -1)
    match?({:ok, _}, Shop.Util.Base36.decode(body)) and format_check(body) == check
  end

  def valid?(_), do: false

  defp format_check(body), do: <<Enum.at(@letters, rem(ShopHash.fnv1a64(body), length(@letters)))>>
end

defmodule Shop.Orders.State do
  @moduledoc "An order's life: placed → paid → shipped → delivered; placed or paid → cancelled."
  @transitions %{
    {:placed, :pay} => :paid,
    {:placed, :cancel} => :cancelled,
    {:paid, :ship} => :shipped,
    {:paid, :cancel} => :cancelled,
    {:shipped, :deliver} => :delivered
  }

  def next(state, event) do
    case Map.fetch(@transitions, {state, event}) do
      {:ok, to} -> {:ok, to}
      :error -> {:error, {:invalid_transition, state, event}}
    end
  end

  def events(state), do: for({{^state, e}, _} <- @transitions, do: e)

  def parse_event(text) do
    Enum.find([:pay, :cancel, :ship, :deliver], :error, &(Atom.to_string(&1) == text))
  end
end

defmodule Shop.Orders.Checkout do
  @moduledoc "Cart to order: validate the address and card, reserve stock, record the order; stock goes back if anything after the reservation fails."
  alias Shop.Orders.Order

  def place(cart, params) do
    with :ok <- nonempty(cart),
         {:ok, email} <- email(params),
         {:ok, address} <- address(params),
         breakdown = Shop.Pricing.price(%{cart | region: address.region}),
         {:ok, payment} <- payment(params, breakdown.total),
         reserved = Enum.map(breakdown.lines, &{&1.sku, &1.qty}),
         :ok <- reserve(reserved) do
      case Shop.Orders.place(%Order{email: email, address: address, breakdown: breakdown, payment: payment}) do
        {:ok, order} -> {:ok, order}
        error -> Shop.Inventory.release(reserved) && error
      end
    end
  end

  defp nonempty(cart), do: if(Shop.Cart.empty?(cart), do: {:error, %{cart: "is empty"}}, else: :ok)

  defp email(p), do: with({:error, _} <- Shop.Customers.Email.normalize(p["email"]), do: {:error, %{email: "is not an email address"}})
  defp address(p), do: Shop.Customers.Address.from_params(p)

  defp payment(p, total) do
    case Shop.Payments.authorize(p, total) do
      {:ok, auth} -> {:ok, auth}
      {:error, {field, msg}} -> {:error, %{field => msg}}
    end
  end

  defp reserve(lines) do
    case Shop.Inventory.reserve(lines) do
      :ok -> :ok
      {:error, {:insufficient, sku, left}} -> {:error, %{stock: "only #{left} of #{sku} left"}}
    end
  end
end

defmodule Shop.Orders.Invoice do
  @moduledoc "A plain-text invoice of an order."
  def text(order) do
    b = order.breakdown
    lines = Enum.map(b.lines, &"#{String.pad_trailing(&1.name, 28)} #{String.pad_leading(Integer.to_string(&1.qty), 3)} × #{String.pad_leading(to_string(&1.unit), 10)}  #{String.pad_leading(to_string(Shop.Cart.Line.total(&1)), 10)}")
    taxes = Enum.map(Shop.Tax.Summary.by_rate(b.tax), fn {rate, amount} -> "VAT #{rate}: #{amount}" end)

    Enum.join(["Invoice #{order.number}", "Bill to: #{order.address.name}, #{order.address.street}, #{order.address.postcode} #{order.address.city}", "" | lines] ++
      ["", "Subtotal: #{b.subtotal}", "Discounts: -#{b.discount}", "Shipping: #{b.shipping}" | taxes] ++ ["Total: #{b.total}", ""], "\n")
  end
end

defmodule Shop.Orders do
  @moduledoc "Placed orders, in the DETS table `orders` (see Shop.Store), owned by this process."
  use GenServer

  alias Shop.Orders.{Number, Order}

  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  @impl true
  def init(:ok) do
    Shop.Orders.SchemaCheck.check!()
    {:ok, orders} = Shop.Store.open(:orders)
    {:ok, counters} = Shop.Store.open(:counters)
    {:ok, by_email} = Shop.Store.open(:orders_by_email)
    {:ok, %{orders: orders, counters: counters, by_email: by_email}}
  end

  def place(%Order{} = order), do: GenServer.call(__MODULE__, {:place, order})
  def get(number), do: GenServer.call(__MODULE__, {:get, number})
  def for_email(email), do: GenServer.call(__MODULE__, {:for_email, email})
  def transition(number, event), do: GenServer.call(__MODULE__, {:transition, number, event})

  @impl true
  def handle_call({:place, order}, _from, s) do
    n = :dets.update_counter(s.counters, :order_number, 1)
    order = %{order | number: Number.format(n), placed_at: Shop.Util.Clock.now()}
    :ok = :dets.insert(s.orders, {order.number, order})
    previous = case :dets.lookup(s.by_email, order.email), do: ([{_, ns}] -> ns; [] -> [])
    :ok = :dets.insert(s.by_email, {order.email, [order.number | previous]})
    {:reply, {:ok, order}, s}
  end

  def handle_call({:get, number}, _from, s) do
    {:reply, case(:dets.lookup(s.orders, number), do: ([{_, o}] -> {:ok, o}; [] -> :error)), s}
  end

  def handle_call({:for_email, email}, _from, s) do
    numbers = case :dets.lookup(s.by_email, email), do: ([{_, ns}] -> ns; [] -> [])
    {:reply, for(n <- numbers, [{_, o}] <- [:dets.lookup(s.orders, n)], do: o), s}
  end

  def handle_call({:transition, number, event}, _from, s) do
    with [{_, o}] <- :dets.lookup(s.orders, number),
         {:ok, state} <- Shop.Orders.State.next(o.state, event) do
      o = %{o | state: state, history: [{state, Shop.Util.Clock.now()} | o.history]}
      :ok = :dets.insert(s.orders, {number, o})
      {:reply, {:ok, o}, s}
    else
      [] -> {:reply, {:error, :not_found}, s}
      error -> {:reply, error, s}
    end
  end

  @impl true
  def terminate(_reason, s), do: Enum.each([s.orders, s.counters, s.by_email], &:dets.close/1)
end
