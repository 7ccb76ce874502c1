defmodule Shop.Catalog.Product do
  @moduledoc "A product: SKU, name, price, tax class, weight and category."
  defstruct [:sku, :name, :slug, :price, :category, :description, tax_class: :standard, weight_g: 0, tags: []]

  @type t :: %__MODULE__{}

  def new(attrs) do
    product = struct!(__MODULE__, attrs)
    %{product | slug: product.slug || Shop.Util.Slug.slugify(product.name)}
  end

  defimpl Shop.Json.Encodable do
    def to_json(p), do: Map.take(p, [:sku, :name, :slug, :price, :category, :description, :tax_class, :weight_g, :tags])
  end
end

defmodule Shop.Catalog.Category do
  @moduledoc "Product categories, in menu order."
  @categories [
    %{id: "kitchen", name: "Kitchen"},
    %{id: "books", name: "Books"},
    %{id: "garden", name: "Garden"},
    %{id: "food", name: "Food"}
  ]

  def all, do: @categories
  def ids, do: Enum.map(@categories, & &1.id)
  def name(id), do: Enum.find_value(@categories, id, &(&1.id == id && &1.name))
  def valid?(id), do: id in ids()
end

defmodule Shop.Catalog.Seed do
  @moduledoc "The products the shop starts with (prices in cents, EUR)."
  @rows [
    {"MUG-BLUE", "Blue Mug", 1250, "kitchen", :standard, 350, ~w(ceramic gift)},
    {"MUG-RED", "Red Mug", 1250, "kitchen", :standard, 350, ~w(ceramic)},
    {"KETTLE-1", "Stovetop Kettle", 4900, "kitchen", :standard, 1200, ~w(steel)},
    {"KNIFE-CHEF", "Chef's Knife", 7900, "kitchen", :standard, 250, ~w(steel gift)},
    {"BOARD-OAK", "Oak Cutting Board", 3500, "kitchen", :standard, 1800, ~w(wood)},
    {"BOOK-ERL", "Programming Erlang", 4200, "books", :reduced, 900, ~w(erlang)},
    {"BOOK-EX", "Elixir in Action", 4500, "books", :reduced, 850, ~w(elixir gift)},
    {"BOOK-OTP", "Designing for Scalability", 5200, "books", :reduced, 1000, ~w(otp)},
    {"SEEDS-BASIL", "Basil Seeds", 390, "garden", :reduced, 20, ~w(herb)},
    {"SEEDS-TOM", "Tomato Seeds", 450, "garden", :reduced, 20, ~w(vegetable)},
    {"TROWEL", "Hand Trowel", 1490, "garden", :standard, 300, ~w(steel)},
    {"GLOVES", "Garden Gloves", 1190, "garden", :standard, 150, ~w(gift)},
    {"COFFEE-1KG", "Coffee Beans 1 kg", 2400, "food", :reduced, 1000, ~w(coffee)},
    {"TEA-GREEN", "Green Tea", 890, "food", :reduced, 100, ~w(tea gift)},
    {"HONEY", "Forest Honey", 990, "food", :reduced, 500, ~w(sweet)},
    {"GIFT-CARD", "Gift Card", 2500, "food", :zero, 0, ~w(gift)}
  ]

  def products do
    for {sku, name, cents, cat, tax, weight, tags} <- @rows do
      Shop.Catalog.Product.new(sku: sku, name: name, price: Shop.Money.new(cents), category: cat, tax_class: tax, weight_g: weight, tags: tags, description: "#{name} from the #{Shop.Catalog.Category.name(cat)} range.")
    end
  end

  @doc "Opening stock per SKU."
  def stock, do: Map.new(@rows, fn {sku, _, _, _, _, _, _} -> {sku, 25} end)
end

defmodule Shop.Catalog.Store do
  @moduledoc "Products in a protected ETS table owned by this process; reads go straight to ETS."
  use GenServer

  @table :shop_products

  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  @impl true
  def init(:ok) do
    :ets.new(@table, [:named_table, :protected, :set, read_concurrency: true])
    for p <- Shop.Catalog.Seed.products(), do: :ets.insert(@table, {p.sku, p})
    {:ok, %{}}
  end

  def put(product), do: GenServer.call(__MODULE__, {:put, product})

  @impl true
  def handle_call({:put, product}, _from, state) do
    case Shop.Catalog.Validation.validate(product) do
      :ok -> {:reply, {:ok, :ets.insert(@table, {product.sku, product}) && product}, state}
      {:error, errors} -> {:reply, {:error, errors}, state}
    end
  end

  def get(sku) do
    case :ets.lookup(@table, sku) do
      [{_, p}] -> {:ok, p}
      [] -> :error
    end
  end

  def all, do: @table |> :ets.tab2list() |> Enum.map(&elem(&1, 1))
end

defmodule Shop.Catalog.Validation do
  @moduledoc "What a product must have."
  alias Shop.Validate

  def validate(product) do
    Validate.run(product, [
      {:sku, &Validate.format(&1, ~r/^[A-Z0-9-]{2,32}$/, "expected 2-32 of A-Z 0-9 -")},
      {:name, &Validate.length(&1, 1, 120)},
      {:price, &Validate.money_positive/1},
      {:category, &Validate.inclusion(&1, Shop.Catalog.Category.ids())},
      {:tax_class, &Validate.inclusion(&1, Shop.Tax.Class.all())}
    ])
  end
end
