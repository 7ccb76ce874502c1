defmodule Shop.Payments do
  @moduledoc """
  Card checks before an order is placed: number (Luhn, in C through ShopHash), expiry and CVC.
  The shop records the authorisation it would ask a payment provider for; no card data is kept
  beyond the last four digits and the brand.
  """
  alias Shop.Payments.{Brand, Card, Expiry}

  def authorize(params, amount) do
    with {:ok, card} <- Card.parse(params),
         :ok <- Expiry.check(card.month, card.year, Shop.Util.Clock.today()) do
      {:ok, %{id: "auth_" <> Shop.Util.Ids.random(9), brand: Brand.of(card.number), last4: String.slice(card.number, -4, 4), amount: amount}}
    end
  end
end

defmodule Shop.Payments.Card do
  @moduledoc "A card number, expiry and CVC from form fields."
  defstruct [:number, :month, :year, :cvc]

  def parse(p) do
    number = String.replace(p["card"] || "", ~r/[\s-]/, "")

    cond do
      not (number =~ ~r/^\d{12,19}$/) -> {:error, {:card, "expected 12 to 19 digits"}}
      not ShopHash.luhn_valid?(number) -> {:error, {:card, "is not a valid card number"}}
      not ((p["cvc"] || "") =~ ~r/^\d{3,4}$/) -> {:error, {:cvc, "expected 3 or 4 digits"}}
      true -> expiry(number, p)
    end
  end

  defp expiry(number, p) do
    case Regex.run(~r/^(\d{2})\/(\d{2})$/, p["expiry"] || "") do
      [_, mm, yy] -> {:ok, %__MODULE__{number: number, month: String.to_integer(mm), year: 2000 + String.to_integer(yy), cvc: p["cvc"]}}
      _ -> {:error, {:expiry, "expected MM/YY"}}
    end
  end
end

defmodule Shop.Payments.Expiry do
  @moduledoc "A card is valid through the last day of its expiry month."
  def check(month, _year, _today) when month < 1 or month > 12, do: {:error, {:expiry, "month must be 01 to 12"}}

  def check(month, year, today) do
    last = Date.new!(year, month, Calendar.ISO.days_in_month(year, month))
    if Date.compare(last, today) == :lt, do: {:error, {:expiry, "the card has expired"}}, else: :ok
  end
end

defmodule Shop.Payments.Brand do
  @moduledoc "Card brand from the number's prefix."
  def of("4" <> _), do: "visa"
  def of("5" <> <<d, _::binary>>) when d in ?1..?5, do: "mastercard"
  def of("34" <> _), do: "amex"
  def of("37" <> _), do: "amex"
  def of(_), do: "card"
end
