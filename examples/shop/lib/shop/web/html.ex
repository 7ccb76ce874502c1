defmodule Shop.Web.Html do
  @moduledoc "HTML escaping; `{:safe, iodata}` marks what is already HTML."

  def escape({:safe, iodata}), do: IO.iodata_to_binary(iodata)
  def escape(nil), do: ""
  def escape(list) when is_list(list), do: Enum.map_join(list, &escape/1)
  def escape(value) when is_binary(value), do: for(<<c <- value>>, into: "", do: char(c))
  def escape(value), do: value |> to_string() |> escape()

  defp char(?<), do: "&lt;"
  defp char(?>), do: "&gt;"
  defp char(?&), do: "&amp;"
  defp char(?"), do: "&quot;"
  defp char(?'), do: "&#39;"
  defp char(c), do: <<c>>

  def raw(iodata), do: {:safe, iodata}
end

defmodule Shop.Web.HtmlEngine do
  @moduledoc "An EEx engine that escapes every `<%= %>` unless the value is `{:safe, _}`; nested blocks are safe (EEx.Engine does the rest)."
  @behaviour EEx.Engine

  @impl true
  defdelegate init(opts), to: EEx.Engine
  @impl true
  defdelegate handle_body(state), to: EEx.Engine
  @impl true
  defdelegate handle_text(state, meta, text), to: EEx.Engine
  @impl true
  defdelegate handle_begin(state), to: EEx.Engine
  # A nested block (the body of a `for` or `if` in `<%= %>`) is HTML already: marked safe.
  @impl true
  def handle_end(state), do: quote(do: {:safe, unquote(EEx.Engine.handle_end(state))})

  # `@name` reads the assign `name`, as with EEx.SmartEngine.
  @impl true
  def handle_expr(state, "=", ast), do: EEx.Engine.handle_expr(state, "=", quote(do: Shop.Web.Html.escape(unquote(assigns(ast)))))
  def handle_expr(state, marker, ast), do: EEx.Engine.handle_expr(state, marker, assigns(ast))

  defp assigns(ast), do: Macro.prewalk(ast, &EEx.Engine.handle_assign/1)
end

defmodule Shop.Web.Assets do
  @moduledoc "Digested asset paths from priv/static/cache_manifest.json (written by `mix assets.deploy`), read once."

  def path(logical) do
    case Map.get(manifest(), logical) do
      nil -> "/static/" <> logical
      digested -> "/static/" <> digested
    end
  end

  def manifest do
    case :persistent_term.get(__MODULE__, nil) do
      nil ->
        m = load()
        :persistent_term.put(__MODULE__, m)
        m

      m ->
        m
    end
  end

  defp load do
    case File.read(Path.join(Shop.Http.Static.root(), "cache_manifest.json")) do
      {:ok, text} -> Shop.Json.decode!(text)
      {:error, _} -> %{}
    end
  end
end

defmodule Shop.Web.Layout do
  @moduledoc "The page around every HTML view."
  require EEx

  EEx.function_from_string(:def, :render, ~S"""
  <!doctype html>
  <html lang="en">
  <head>
  <meta charset="utf-8">
  <title><%= @title %> · Shop</title>
  <link rel="stylesheet" href="<%= Shop.Web.Assets.path("app.css") %>">
  <script defer src="<%= Shop.Web.Assets.path("assets/app.js") %>"></script>
  </head>
  <body>
  <header><a href="/">Shop</a> <nav><%= for c <- Shop.Catalog.Category.all() do %><a href="/?category=<%= c.id %>"><%= c.name %></a> <% end %></nav> <a href="/cart" id="cart-link">Cart (<%= @cart_count %>)</a></header>
  <main><%= @inner %></main>
  <footer>Revision <%= Application.get_env(:shop, :revision, "unknown") %></footer>
  </body>
  </html>
  """, [:assigns], engine: Shop.Web.HtmlEngine)
end

defmodule Shop.Web.ProductView do
  @moduledoc "The product list and a product page."
  require EEx

  EEx.function_from_string(:def, :index, ~S"""
  <h1><%= @heading %></h1>
  <form action="/" method="get"><input name="q" value="<%= @q %>" placeholder="Search"><button>Search</button></form>
  <ul class="products">
  <%= for p <- @page.entries do %>
  <li><a href="/products/<%= p.slug %>"><%= p.name %></a> <span class="price"><%= p.price %></span> <small><%= Shop.Inventory.Availability.label(Shop.Inventory.level(p.sku)) %></small></li>
  <% end %>
  </ul>
  <%= if Shop.Util.Pages.next?(@page) do %><a href="/?page=<%= @page.page + 1 %>">Next</a><% end %>
  """, [:assigns], engine: Shop.Web.HtmlEngine)

  EEx.function_from_string(:def, :show, ~S"""
  <h1><%= @product.name %></h1>
  <p><%= @product.description %></p>
  <p class="price"><%= @product.price %> <small>plus VAT</small></p>
  <form action="/cart/add" method="post" data-cart-form>
  <input type="hidden" name="sku" value="<%= @product.sku %>">
  <input name="qty" value="1" size="2"> <button>Add to cart</button>
  </form>
  """, [:assigns], engine: Shop.Web.HtmlEngine)
end

defmodule Shop.Web.CartView do
  @moduledoc "The cart page with its price breakdown."
  require EEx

  EEx.function_from_string(:def, :show, ~S"""
  <h1>Cart</h1>
  <%= if @b.lines == [] do %><p>Your cart is empty.</p><% else %>
  <table>
  <%= for l <- @b.lines do %><tr><td><%= l.name %></td><td><%= l.qty %></td><td><%= Shop.Cart.Line.total(l) %></td></tr><% end %>
  <%= for d <- @b.discounts do %><tr class="discount"><td colspan="2"><%= d.label %></td><td>-<%= d.amount %></td></tr><% end %>
  <tr><td colspan="2">Shipping</td><td><%= @b.shipping %></td></tr>
  <tr><td colspan="2">VAT</td><td><%= Shop.Tax.Summary.exclusive(@b.tax) %></td></tr>
  <tr class="total"><td colspan="2">Total</td><td><%= @b.total %></td></tr>
  </table>
  <%= if @b.coupon_error do %><p class="error"><%= @b.coupon_error %></p><% end %>
  <form action="/cart/coupon" method="post"><input name="code" placeholder="Coupon"><button>Apply</button></form>
  <% end %>
  """, [:assigns], engine: Shop.Web.HtmlEngine)
end

defmodule Shop.Web.OrderView do
  @moduledoc "An order's confirmation page."
  require EEx

  EEx.function_from_string(:def, :show, ~S"""
  <h1>Order <%= @order.number %></h1>
  <p>State: <%= @order.state %></p>
  <pre><%= Shop.Orders.Invoice.text(@order) %></pre>
  """, [:assigns], engine: Shop.Web.HtmlEngine)
end

defmodule Shop.Web.ErrorView do
  @moduledoc "Error pages."
  require EEx
  EEx.function_from_string(:def, :render, ~S"""
  <h1><%= @status %> <%= Shop.Http.Status.reason(@status) %></h1>
  <p><%= @message %></p>
  """, [:assigns], engine: Shop.Web.HtmlEngine)
end
