// Money as the API sends it ({cents, currency, formatted}).
export function formatMoney(money) {
  if (money && typeof money.formatted === "string") return money.formatted;
  const cents = Number(money?.cents ?? 0);
  return `${(cents / 100).toFixed(2)} ${money?.currency ?? ""}`.trim();
}
