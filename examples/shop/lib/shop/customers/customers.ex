defmodule Shop.Customers do
  @moduledoc "Customers in ETS by email: sign-up with a salted password hash, sign-in, sessions."
  use GenServer

  alias Shop.Customers.{Customer, Email, Password, Sessions}

  @table :shop_customers

  def start_link(_), do: GenServer.start_link(__MODULE__, :ok, name: __MODULE__)

  @impl true
  def init(:ok) do
    :ets.new(@table, [:named_table, :protected, :set, read_concurrency: true])
    Sessions.create()
    {:ok, %{}}
  end

  def register(email, name, password), do: GenServer.call(__MODULE__, {:register, email, name, password})

  @impl true
  def handle_call({:register, email, name, password}, _from, state) do
    with {:ok, email} <- Email.normalize(email),
         :ok <- Password.strong_enough(password),
         true <- :ets.insert_new(@table, {email, Customer.new(email, name, Password.hash(password))}) || {:error, :taken} do
      {:reply, fetch(email), state}
    else
      {:error, _} = e -> {:reply, e, state}
    end
  end

  def fetch(email) do
    case :ets.lookup(@table, email) do
      [{_, c}] -> {:ok, c}
      [] -> {:error, :not_found}
    end
  end

  @doc "A session token for a right email and password; the same error for a wrong one and an unknown email."
  def sign_in(email, password) do
    with {:ok, email} <- Email.normalize(email),
         {:ok, c} <- fetch(email),
         true <- Password.verify(password, c.password_hash) do
      {:ok, Sessions.open(c.email)}
    else
      _ -> {:error, :invalid_credentials}
    end
  end

  def count, do: :ets.info(@table, :size)
end

defmodule Shop.Customers.Customer do
  @moduledoc "A customer."
  defstruct [:email, :name, :password_hash, :since, addresses: []]

  def new(email, name, hash), do: %__MODULE__{email: email, name: name, password_hash: hash, since: Shop.Util.Clock.now()}

  defimpl Shop.Json.Encodable do
    def to_json(c), do: %{email: c.email, name: c.name, since: c.since}
  end
end

defmodule Shop.Customers.Email do
  @moduledoc "Email addresses: trimmed, lower-cased, one @ with a dotted domain."
  def normalize(email) when is_binary(email) do
    e = email |> String.trim() |> String.downcase()
    if e =~ ~r/^[^\s@]+@[^\s@]+\.[^\s@]+$/ and byte_size(e) <= 254, do: {:ok, e}, else: {:error, :invalid_email}
  end

  def normalize(_), do: {:error, :invalid_email}
end

defmodule Shop.Customers.Password do
  @moduledoc "PBKDF2-HMAC-SHA256 password hashes (`:crypto.pbkdf2_hmac/5`), compared in constant time."
  @iterations 10_000

  def strong_enough(p) when is_binary(p) and byte_size(p) >= 8, do: :ok
  def strong_enough(_), do: {:error, :weak_password}

  def hash(password) do
    salt = :crypto.strong_rand_bytes(16)
    "pbkdf2$#{@iterations}$" <> Base.encode64(salt) <> "$" <> Base.encode64(derive(password, salt, @iterations))
  end

  def verify(password, stored) do
    ["pbkdf2", n, salt, key] = String.split(stored, "$")
    expected = Base.decode64!(key)
    Shop.Customers.ConstantTime.equal?(derive(password, Base.decode64!(salt), String.to_integer(n)), expected)
  end

  defp derive(password, salt, n), do: :crypto.pbkdf2_hmac(:sha256, password, salt, n, 32)
end

defmodule Shop.Customers.ConstantTime do
  @moduledoc "Compares binaries without leaking where they differ."
  import Bitwise

  def equal?(a, b) when byte_size(a) == byte_size(b) do
    a
    |> :binary.bin_to_list()
    |> Enum.zip(:binary.bin_to_list(b))
    |> Enum.reduce(0, fn {x, y}, acc -> acc ||| bxor(x, y) end)
    |> Kernel.==(0)
  end

  def equal?(_, _), do: false
end

defmodule Shop.Customers.Sessions do
  @moduledoc "Session tokens in ETS, with an expiry."
  @table :shop_sessions
  @ttl 7 * 86_400

  def create, do: :ets.new(@table, [:named_table, :public, :set])

  def open(email) do
    token = Shop.Util.Ids.random(24)
    :ets.insert(@table, {token, email, Shop.Util.Clock.unix() + @ttl})
    token
  end

  def who(token) do
    now = Shop.Util.Clock.unix()

    case :ets.lookup(@table, token) do
      [{_, email, exp}] when exp > now -> {:ok, email}
      _ -> :error
    end
  end

  def close(token), do: :ets.delete(@table, token)
end

defmodule Shop.Customers.Address do
  @moduledoc "A postal address, validated."
  defstruct [:name, :street, :postcode, :city, :region]

  def from_params(p) do
    addr = %__MODULE__{name: p["name"], street: p["street"], postcode: p["postcode"], city: p["city"], region: p["region"] || "DE"}

    case Shop.Validate.run(Map.from_struct(addr), name: &Shop.Validate.required/1, street: &Shop.Validate.required/1, postcode: &Shop.Customers.Postcode.check(&1, addr.region), city: &Shop.Validate.required/1, region: &Shop.Validate.inclusion(&1, Shop.Tax.Region.all())) do
      :ok -> {:ok, addr}
      {:error, errors} -> {:error, errors}
    end
  end

  defimpl Shop.Json.Encodable do
    def to_json(a), do: Map.from_struct(a)
  end
end

defmodule Shop.Customers.Postcode do
  @moduledoc "Postcode formats per region."
  @formats %{"DE" => ~r/^\d{5}$/, "FR" => ~r/^\d{5}$/, "NL" => ~r/^\d{4}\s?[A-Z]{2}$/, "CH" => ~r/^\d{4}$/}

  def check(code, region) when is_binary(code) do
    re = Map.get(@formats, region, ~r/^.{2,10}$/)
    if String.trim(code) =~ re, do: :ok, else: "is not a postcode of #{Shop.Tax.Region.name(region)}"
  end

  def check(_, _), do: "is required"
end
