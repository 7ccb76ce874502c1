// The shop's browser code: add-to-cart without a page load, and a cart count that follows.
import { addToCart } from "./cart.js";
import { formatMoney } from "./money.js";

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-cart-form")) return;
  event.preventDefault();
  const data = new FormData(form);
  const cart = await addToCart(String(data.get("sku")), Number(data.get("qty") || 1));
  const link = document.getElementById("cart-link");
  if (link) link.textContent = `Cart (${cart.count}) · ${formatMoney(cart.total)}`;
});
