defmodule Shop.Application do
  @moduledoc """
  Starts the shop. Environment:

    * `PORT` (default 4000), `BIND` (default 127.0.0.1) - where the HTTP server listens
    * `SHOP_DATA_DIR` (else `STATE_DIRECTORY`) - the DETS store (see `Shop.Store`); migrated by `bin/shop eval Shop.Release.migrate`
    * `XAMAL_REVISION` / `XAMAL_VERSION` - the revision `/up` reports
    * `CART_TTL_SECONDS` (default 86400) - idle carts are dropped after this

  Children stop in reverse order: the listener first (no new connections), then the connections.
  """
  use Application

  alias Shop.Util.Env

  @impl true
  def start(_type, _args) do
    Application.put_env(:shop, :revision, Env.string("XAMAL_REVISION", Env.string("XAMAL_VERSION", "unknown")))
    Shop.Metrics.init()

    children = [
      Shop.Catalog.Store,
      Shop.Inventory,
      {Shop.Cart.Store, ttl_seconds: Env.integer("CART_TTL_SECONDS", 86_400, 60, 31_536_000)},
      Shop.Customers,
      Shop.Orders,
      {DynamicSupervisor, name: Shop.Http.ConnSup, strategy: :one_for_one},
      {Shop.Http.Listener, ip: Env.ip("BIND", "127.0.0.1"), port: Env.integer("PORT", 4000, 0, 65_535), router: Shop.Web.Router}
    ]

    Supervisor.start_link(children, strategy: :rest_for_one, name: Shop.Supervisor)
  end
end
