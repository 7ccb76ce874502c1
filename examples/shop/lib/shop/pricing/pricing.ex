defmodule Shop.Pricing.Breakdown do
  @moduledoc "The priced cart."
  defstruct lines: [], subtotal: nil, discounts: [], discount: nil, shipping: nil, tax: nil, total: nil, coupon: nil, coupon_error: nil

  defimpl Shop.Json.Encodable do
    def to_json(b) do
      %{
        lines: b.lines, subtotal: b.subtotal, discounts: b.discounts, discount: b.discount, shipping: b.shipping,
        tax: b.tax, total: b.total, coupon: b.coupon, coupon_error: b.coupon_error
      }
    end
  end
end

defmodule Shop.Pricing.Discount do
  @moduledoc "One discount applied: why and how much."
  defstruct [:label, :amount]

  defimpl Shop.Json.Encodable do
    def to_json(d), do: %{label: d.label, amount: d.amount}
  end
end

defmodule Shop.Pricing.Rule do
  @moduledoc "A pricing rule: the discounts it gives for the lines of a cart."
  @callback discounts([Shop.Cart.Line.t()]) :: [Shop.Pricing.Discount.t()]
end

defmodule Shop.Pricing.Rules do
  @moduledoc "Rules every cart gets, without a coupon."
  def automatic, do: [Shop.Pricing.Rules.BulkTier, Shop.Pricing.Rules.SeedsThreeForTwo]
end

defmodule Shop.Pricing.Rules.BulkTier do
  @moduledoc "Quantity tiers per line: 5% off from 5 of a kind, 10% from 10."
  @behaviour Shop.Pricing.Rule
  alias Shop.Pricing.Discount

  @impl true
  def discounts(lines) do
    for line <- lines, bp = tier(line.qty), bp > 0 do
      %Discount{label: "#{div(bp, 100)}% off #{line.qty} × #{line.name}", amount: Shop.Money.percent(Shop.Cart.Line.total(line), bp)}
    end
  end

  defp tier(q) when q >= 10, do: 1000
  defp tier(q) when q >= 5, do: 500
  defp tier(_), do: 0
end

defmodule Shop.Pricing.Rules.BuyXGetY do
  @moduledoc "Buy X get Y free among lines matching a predicate; the cheapest units are free."
  alias Shop.Pricing.Discount

  def discounts(lines, match, x, y, label) do
    units = for l <- lines, match.(l), _ <- 1..l.qty, do: l.unit
    free = div(length(units), x + y) * y

    if free > 0 do
      amount = units |> Enum.sort_by(& &1.cents) |> Enum.take(free) |> Shop.Money.sum()
      [%Discount{label: label, amount: amount}]
    else
      []
    end
  end
end

defmodule Shop.Pricing.Rules.SeedsThreeForTwo do
  @moduledoc "Seeds: three for the price of two."
  @behaviour Shop.Pricing.Rule

  @impl true
  def discounts(lines), do: Shop.Pricing.Rules.BuyXGetY.discounts(lines, &String.starts_with?(&1.sku, "SEEDS-"), 2, 1, "Seeds: 3 for 2")
end

defmodule Shop.Pricing.Rules.PercentOff do
  @moduledoc "A percentage off every line of some categories (or all)."
  alias Shop.Pricing.Discount

  def discounts(lines, bp, categories, label) do
    matching = Enum.filter(lines, &(categories == :all or &1.category in categories))
    total = matching |> Enum.map(&Shop.Cart.Line.total/1) |> Shop.Money.sum()
    if Shop.Money.zero?(total), do: [], else: [%Discount{label: label, amount: Shop.Money.percent(total, bp)}]
  end
end

defmodule Shop.Pricing.Rules.AmountOff do
  @moduledoc "A fixed amount off carts from a minimum subtotal."
  alias Shop.Pricing.Discount

  def discounts(lines, cents, min_cents, label) do
    subtotal = lines |> Enum.map(&Shop.Cart.Line.total/1) |> Shop.Money.sum()
    if subtotal.cents >= min_cents, do: [%Discount{label: label, amount: Shop.Money.new(cents)}], else: []
  end
end

defmodule Shop.Pricing.Coupon do
  @moduledoc "A coupon: its code, validity and the rule it applies."
  defstruct [:code, :rule, :valid_until, free_shipping: false]
end

defmodule Shop.Pricing.Coupons do
  @moduledoc "The coupons the shop accepts."
  alias Shop.Pricing.Coupon
  alias Shop.Pricing.Rules.{AmountOff, PercentOff}

  defmodule Welcome10 do
    @moduledoc "WELCOME10: 10% off everything."
    def discounts(lines), do: PercentOff.discounts(lines, 1000, :all, "WELCOME10: 10% off")
  end

  defmodule Books20 do
    @moduledoc "BOOKS20: 20% off books."
    def discounts(lines), do: PercentOff.discounts(lines, 2000, ["books"], "BOOKS20: 20% off books")
  end

  defmodule Five do
    @moduledoc "FIVE: €5 off from €40."
    def discounts(lines), do: AmountOff.discounts(lines, 500, 4000, "FIVE: €5 off")
  end

  defmodule NoDiscount do
    @moduledoc "A coupon whose only benefit is not a discount (e.g. free shipping)."
    def discounts(_lines), do: []
  end

  def all do
    [
      %Coupon{code: "WELCOME10", rule: Welcome10, valid_until: ~D[2099-12-31]},
      %Coupon{code: "BOOKS20", rule: Books20, valid_until: ~D[2099-12-31]},
      %Coupon{code: "FIVE", rule: Five, valid_until: ~D[2099-12-31]},
      %Coupon{code: "SHIPFREE", rule: NoDiscount, valid_until: ~D[2099-12-31], free_shipping: true},
      %Coupon{code: "EXPIRED", rule: Welcome10, valid_until: ~D[2020-01-01]}
    ]
  end

  def lookup(nil), do: nil

  def lookup(code) do
    today = Shop.Util.Clock.today()
    Enum.find(all(), &(&1.code == code and Date.compare(&1.valid_until, today) != :lt))
  end
end

defmodule Shop.Pricing do
  @moduledoc """
  Prices a cart: line totals, discounts from automatic rules and the cart's coupon, shipping,
  tax per line after discounts, and the grand total — all in a `Shop.Pricing.Breakdown`.
  """
  alias Shop.Pricing.{Breakdown, Coupons, Rules}
  alias Shop.{Cart, Money}

  def price(%Cart{} = cart) do
    lines = Cart.lines(cart)
    subtotal = Money.sum(Enum.map(lines, &Cart.Line.total/1))
    coupon = Coupons.lookup(cart.coupon)
    discounts = Rules.automatic() |> Enum.concat(coupon_rules(coupon)) |> Enum.flat_map(& &1.discounts(lines))
    discount = discounts |> Enum.map(& &1.amount) |> Money.sum() |> Money.min(subtotal)
    per_line = Shop.Tax.Allocation.allocate(discount, lines)
    shipping = Shop.Shipping.quote(lines, cart.region, Money.sub(subtotal, discount), coupon)
    tax = Shop.Tax.compute(lines, per_line, shipping, cart.region)

    %Breakdown{
      lines: lines,
      subtotal: subtotal,
      discounts: discounts,
      discount: discount,
      shipping: shipping,
      tax: tax,
      total: subtotal |> Money.sub(discount) |> Money.add(shipping) |> Money.add(Shop.Tax.Summary.exclusive(tax)),
      coupon: coupon && coupon.code,
      coupon_error: coupon_error(cart.coupon, coupon)
    }
  end

  defp coupon_rules(nil), do: []
  defp coupon_rules(coupon), do: [coupon.rule]

  defp coupon_error(nil, _), do: nil
  defp coupon_error(_code, nil), do: "unknown or expired coupon"
  defp coupon_error(_, _), do: nil
end
