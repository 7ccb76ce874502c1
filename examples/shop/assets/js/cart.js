// Adds a line through the JSON API; answers the new count and total.
export async function addToCart(sku, qty) {
  const res = await fetch("/api/cart/lines", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ sku, qty }),
  });
  if (!res.ok) throw new Error(`cart: ${res.status}`);
  const body = await res.json();
  const count = body.priced.lines.reduce((n, line) => n + line.qty, 0);
  return { count, total: body.priced.total };
}
