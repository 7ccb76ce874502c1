defmodule Shop.Web.Router do
  @moduledoc "Routes a request, after `Shop.Web.Pipeline`, to its controller by method and path segments."
  alias Shop.Web.{AccountController, ApiController, CartController, CheckoutController, HealthController, OrderController, PageController, Pipeline}
  alias Shop.Http.Response

  def call(req) do
    req = Pipeline.run(req)
    route(req.method, req.segments, req) |> Pipeline.finish(req)
  end

  defp route("GET", ["up"], req), do: HealthController.up(req)
  defp route("HEAD", ["up"], req), do: HealthController.up(req)
  defp route("GET", ["metrics"], req), do: HealthController.metrics(req)
  defp route(m, ["static" | parts], req) when m in ["GET", "HEAD"], do: Shop.Http.Static.serve(req, parts)
  defp route("GET", [], req), do: PageController.index(req)
  defp route("GET", ["products", slug], req), do: PageController.show(req, slug)
  defp route("GET", ["cart"], req), do: CartController.show(req)
  defp route("POST", ["cart", "add"], req), do: CartController.add(req)
  defp route("POST", ["cart", "update"], req), do: CartController.update(req)
  defp route("POST", ["cart", "coupon"], req), do: CartController.coupon(req)
  defp route("POST", ["checkout"], req), do: CheckoutController.create(req)
  defp route("GET", ["orders", number], req), do: OrderController.show(req, number)
  defp route("POST", ["account"], req), do: AccountController.register(req)
  defp route("POST", ["session"], req), do: AccountController.sign_in(req)
  defp route("GET", ["api", "products"], req), do: ApiController.products(req)
  defp route("GET", ["api", "products", sku], req), do: ApiController.product(req, sku)
  defp route("GET", ["api", "cart"], req), do: ApiController.cart(req)
  defp route("POST", ["api", "cart", "lines"], req), do: ApiController.add_line(req)
  defp route("GET", ["api", "orders", number], req), do: ApiController.order(req, number)
  defp route("POST", ["api", "orders", number, "events"], req), do: ApiController.order_event(req, number)
  defp route("GET", ["api", "inventory"], req), do: ApiController.inventory(req)
  defp route(_m, path, req) when path in [["up"], ["cart"], ["api", "products"], ["api", "cart"]], do: Shop.Web.Errors.page(req, 405, "method not allowed")
  defp route(_m, _path, req), do: Shop.Web.Errors.page(req, 404, "no page at #{req.path}")

  @doc false
  def not_found, do: Response.text(404, "not found\n")
end

defmodule Shop.Web.Pipeline do
  @moduledoc "Before a route: cookies, parameters (query, form or JSON body), the cart. After: the cart cookie, once the cart is saved."
  alias Shop.Http.{Cookies, Request, Response}

  @cart_cookie "shop_cart"

  def run(req) do
    cookies = Cookies.parse(Request.header(req, "cookie"))
    req = %{req | params: Map.merge(req.query, Shop.Web.BodyParams.parse(req))}

    req
    |> Request.assign(:cookies, cookies)
    |> Request.assign(:cart, Shop.Cart.Store.fetch(cookies[@cart_cookie]))
  end

  def finish(%Response{} = resp, req) do
    case req.assigns[:cart] do
      %Shop.Cart{id: id} -> if req.assigns.cookies[@cart_cookie] == id or not Shop.Cart.Store.exists?(id), do: resp, else: Response.put_header(resp, "set-cookie", Cookies.set(@cart_cookie, id, 86_400))
      _ -> resp
    end
  end
end

defmodule Shop.Web.BodyParams do
  @moduledoc "Request bodies to parameters: urlencoded forms and JSON objects; anything else gives none."
  alias Shop.Http.Request

  def parse(%Request{body: ""}), do: %{}

  def parse(req) do
    case Request.header(req, "content-type", "") |> String.split(";") |> hd() |> String.trim() do
      "application/x-www-form-urlencoded" -> Shop.Http.Query.decode(req.body)
      "application/json" -> json(req.body)
      _ -> %{}
    end
  end

  defp json(body) do
    case Shop.Json.decode(body) do
      {:ok, %{} = map} -> Map.new(map, fn {k, v} -> {k, scalar(v)} end)
      _ -> %{}
    end
  end

  defp scalar(v) when is_binary(v), do: v
  defp scalar(v) when is_integer(v), do: Integer.to_string(v)
  defp scalar(v), do: inspect(v)
end

defmodule Shop.Web.Errors do
  @moduledoc "Error answers: JSON for /api, an HTML page otherwise."
  alias Shop.Http.Response

  def page(%{segments: ["api" | _]}, status, message), do: Response.json(status, %{error: message})
  def page(req, status, message), do: Shop.Web.Render.page(req, status, "Error", Shop.Web.ErrorView.render(status: status, message: message))

  def validation(req, errors) when is_map(errors), do: page(req, 422, errors |> Enum.map(fn {k, v} -> "#{k} #{v}" end) |> Enum.sort() |> Enum.join("; "))
end

defmodule Shop.Web.Render do
  @moduledoc "A view inside the layout."
  def page(req, status, title, inner) do
    cart = req.assigns[:cart]
    html = Shop.Web.Layout.render(title: title, inner: {:safe, inner}, cart_count: if(cart, do: Shop.Cart.count(cart), else: 0))
    Shop.Http.Response.html(status, html)
  end
end
