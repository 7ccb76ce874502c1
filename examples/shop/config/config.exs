import Config

# The access log (Shop.Log.Access) is at debug level: shown in development, not in production.
config :logger, level: if(config_env() == :prod, do: :info, else: :debug)
