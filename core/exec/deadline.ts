/**
 * Calls `onExpiry` once `ms` have passed unless cleared first; `expired()` tells afterwards whether
 * it fired. No timer at all when `ms` is undefined or 0 (no limit).
 */
export function deadline(ms: number | undefined, onExpiry: () => void): { expired(): boolean; clear(): void } {
  let fired = false;
  const timer = ms
    ? setTimeout(() => {
        fired = true;
        onExpiry();
      }, ms)
    : undefined;
  return { expired: () => fired, clear: () => clearTimeout(timer) };
}
