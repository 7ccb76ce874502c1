defmodule Shop.Web.HealthController do
  @moduledoc "`/up` for the deployer's health check (200 once the app is serving, with its revision) and `/metrics`."
  alias Shop.Http.Response

  def up(_req) do
    Response.json(200, %{status: "ok", app: "shop", version: Application.spec(:shop, :vsn) |> to_string(), revision: Application.get_env(:shop, :revision, "unknown"), nif: ShopHash.loaded?(), schema: Application.get_env(:shop, :schema)})
  end

  def metrics(_req), do: Response.json(200, %{requests: Shop.Metrics.snapshot(), carts: Shop.Cart.Store.count(), customers: Shop.Customers.count()})
end

defmodule Shop.Web.PageController do
  @moduledoc "The storefront: product list (search, filters, pages) and product pages."
  alias Shop.Validate.Params

  def index(req) do
    products = Shop.Catalog.list(req.params)
    page = Shop.Util.Pages.paginate(products, Params.integer(req.params, "page", 1), 12)
    heading = if req.params["q"] in [nil, ""], do: "All products", else: "Results for “#{req.params["q"]}”"
    Shop.Web.Render.page(req, 200, "Products", Shop.Web.ProductView.index(page: page, heading: heading, q: req.params["q"]))
  end

  def show(req, slug) do
    case Shop.Catalog.get_by_slug(slug) do
      nil -> Shop.Web.Errors.page(req, 404, "no product #{slug}")
      p -> Shop.Web.Render.page(req, 200, p.name, Shop.Web.ProductView.show(product: p))
    end
  end
end

defmodule Shop.Web.CartController do
  @moduledoc "The cart pages: add, change quantities, coupons."
  alias Shop.Validate.Params
  alias Shop.Http.Response

  def show(req), do: Shop.Web.Render.page(req, 200, "Cart", Shop.Web.CartView.show(b: Shop.Pricing.price(req.assigns.cart)))

  def add(req) do
    case Shop.Cart.add(req.assigns.cart, Params.string(req.params, "sku"), max(Params.integer(req.params, "qty", 1), 1)) do
      {:ok, cart} -> save_and_back(req, cart)
      {:error, :unknown_sku} -> Shop.Web.Errors.page(req, 404, "no such product")
    end
  end

  def update(req) do
    case Shop.Cart.set_qty(req.assigns.cart, Params.string(req.params, "sku"), Params.integer(req.params, "qty", -1)) do
      {:ok, cart} -> save_and_back(req, cart)
      {:error, why} -> Shop.Web.Errors.page(req, 422, "cannot change the cart: #{why}")
    end
  end

  def coupon(req), do: save_and_back(req, Shop.Cart.apply_coupon(req.assigns.cart, Params.string(req.params, "code")))

  defp save_and_back(req, cart) do
    Shop.Cart.Store.save(cart)
    _ = req
    Response.redirect("/cart")
  end
end

defmodule Shop.Web.CheckoutController do
  @moduledoc "Places the order of the cart."
  alias Shop.Http.Response

  def create(req) do
    case Shop.Orders.Checkout.place(req.assigns.cart, req.params) do
      {:ok, order} ->
        Shop.Cart.Store.delete(req.assigns.cart.id)
        if json?(req), do: Response.json(201, order), else: Response.redirect("/orders/" <> order.number)

      {:error, errors} ->
        Shop.Web.Errors.validation(req, errors)
    end
  end

  defp json?(req), do: String.contains?(Shop.Http.Request.header(req, "accept", ""), "application/json")
end

defmodule Shop.Web.OrderController do
  @moduledoc "An order's page, by its number (checked before the store is asked)."
  def show(req, number) do
    with true <- Shop.Orders.Number.valid?(number), {:ok, order} <- Shop.Orders.get(number) do
      Shop.Web.Render.page(req, 200, "Order #{number}", Shop.Web.OrderView.show(order: order))
    else
      _ -> Shop.Web.Errors.page(req, 404, "no order #{number}")
    end
  end
end

defmodule Shop.Web.AccountController do
  @moduledoc "Sign-up and sign-in (JSON answers)."
  alias Shop.Http.Response

  def register(req) do
    case Shop.Customers.register(req.params["email"], req.params["name"], req.params["password"]) do
      {:ok, c} -> Response.json(201, c)
      {:error, :taken} -> Response.json(409, %{error: "email already registered"})
      {:error, why} -> Response.json(422, %{error: Atom.to_string(why)})
    end
  end

  def sign_in(req) do
    case Shop.Customers.sign_in(req.params["email"], req.params["password"]) do
      {:ok, token} -> Response.json(200, %{token: token}) |> Response.put_header("set-cookie", Shop.Http.Cookies.set("shop_session", token, 604_800))
      {:error, _} -> Response.json(401, %{error: "wrong email or password"})
    end
  end
end

defmodule Shop.Web.ApiController do
  @moduledoc "The JSON API: products, the cart, orders, inventory."
  alias Shop.Http.Response
  alias Shop.Validate.Params

  def products(req) do
    page = Shop.Util.Pages.paginate(Shop.Catalog.list(req.params), Params.integer(req.params, "page", 1), Params.integer(req.params, "per_page", 12))
    Response.json(200, %{products: page.entries, page: page.page, pages: Shop.Util.Pages.pages(page), total: page.total})
  end

  def product(req, sku) do
    case Shop.Catalog.get(sku) do
      {:ok, p} -> Response.json(200, %{product: p, stock: Shop.Inventory.level(sku)}) |> Response.put_header("etag", Shop.Http.Etag.of(p.sku <> p.name))
      :error -> Shop.Web.Errors.page(req, 404, "no product #{sku}")
    end
  end

  def cart(req), do: Response.json(200, %{id: req.assigns.cart.id, priced: Shop.Pricing.price(req.assigns.cart)})

  def add_line(req) do
    case Shop.Cart.add(req.assigns.cart, Params.string(req.params, "sku"), max(Params.integer(req.params, "qty", 1), 1)) do
      {:ok, cart} -> Response.json(200, %{id: Shop.Cart.Store.save(cart).id, priced: Shop.Pricing.price(cart)})
      {:error, _} -> Shop.Web.Errors.page(req, 404, "no such product")
    end
  end

  def order(req, number) do
    with true <- Shop.Orders.Number.valid?(number), {:ok, o} <- Shop.Orders.get(number) do
      Response.json(200, o)
    else
      _ -> Shop.Web.Errors.page(req, 404, "no order #{number}")
    end
  end

  def order_event(req, number) do
    case Shop.Orders.State.parse_event(req.params["event"]) do
      :error -> Shop.Web.Errors.page(req, 422, "event must be one of pay, cancel, ship, deliver")
      event -> transition(req, number, event)
    end
  end

  defp transition(req, number, event) do
    case Shop.Orders.transition(number, event) do
      {:ok, o} -> Response.json(200, %{number: o.number, state: o.state})
      {:error, :not_found} -> Shop.Web.Errors.page(req, 404, "no order #{number}")
      {:error, {:invalid_transition, from, ev}} -> Shop.Web.Errors.page(req, 409, "cannot #{ev} an order that is #{from}")
    end
  end

  def inventory(_req) do
    levels = Shop.Inventory.levels()
    Response.json(200, %{levels: levels, low: Shop.Inventory.Availability.low_stock(levels)})
  end
end
