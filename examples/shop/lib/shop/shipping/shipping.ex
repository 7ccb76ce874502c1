defmodule Shop.Shipping do
  @moduledoc "The shipping charge of a cart: by region zone and parcel weight; free from a threshold or with a coupon."
  alias Shop.Shipping.{Parcel, Rates, Zone}

  def quote([], _region, _net, _coupon), do: Shop.Money.zero()

  def quote(lines, region, net, coupon) do
    cond do
      coupon && coupon.free_shipping -> Shop.Money.zero()
      Shop.Shipping.FreeThreshold.free?(Zone.of(region), net) -> Shop.Money.zero()
      true -> Rates.price(Zone.of(region), Parcel.weight_g(lines))
    end
  end
end

defmodule Shop.Shipping.Zone do
  @moduledoc "Shipping zones: domestic, EU, rest of the world."
  def of("DE"), do: :domestic
  def of(r) when r in ["FR", "NL"], do: :eu
  def of(_), do: :world
end

defmodule Shop.Shipping.Parcel do
  @moduledoc "Parcel weight: products plus packaging."
  @packaging_g 200
  def weight_g(lines), do: @packaging_g + (lines |> Enum.map(&(&1.weight_g * &1.qty)) |> Enum.sum())
end

defmodule Shop.Shipping.Rates do
  @moduledoc "Prices per zone and weight band (up to g → cents)."
  @bands %{
    domestic: [{2000, 490}, {5000, 690}, {31_500, 990}],
    eu: [{2000, 990}, {5000, 1490}, {31_500, 2490}],
    world: [{2000, 1990}, {5000, 2990}, {31_500, 4990}]
  }

  def price(zone, grams) do
    bands = Map.fetch!(@bands, zone)
    {_, cents} = Enum.find(bands, List.last(bands), fn {max, _} -> grams <= max end)
    Shop.Money.new(cents * parcels(grams))
  end

  defp parcels(grams), do: max(div(grams + 31_499, 31_500), 1)
end

defmodule Shop.Shipping.FreeThreshold do
  @moduledoc "Free domestic shipping from €50 net, EU from €100."
  def free?(:domestic, net), do: net.cents >= 5000
  def free?(:eu, net), do: net.cents >= 10_000
  def free?(_, _), do: false
end
