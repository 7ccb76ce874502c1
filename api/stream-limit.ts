/**
 * Open log streams (SSE) per token, counted in this API process: a token with `max` streams open
 * gets 429 for the next one until one closes. Each API process of a farm counts for itself, so a
 * token may hold `max` streams on each.
 */
export interface StreamLimit {
  /** Takes a place for `key`; undefined when it holds `max` already. The returned function gives it back (once). */
  open(key: string): (() => void) | undefined;
  /** Streams open now for `key`. */
  count(key: string): number;
  readonly max: number;
}

export const DEFAULT_MAX_STREAMS_PER_TOKEN = 8;

export function streamLimit(max: number): StreamLimit {
  const open = new Map<string, number>();
  return {
    max,
    count: (key) => open.get(key) ?? 0,
    open(key) {
      const n = open.get(key) ?? 0;
      if (n >= max) return undefined;
      open.set(key, n + 1);
      let closed = false;
      return () => {
        if (closed) return;
        closed = true;
        const left = (open.get(key) ?? 1) - 1;
        if (left > 0) open.set(key, left);
        else open.delete(key);
      };
    },
  };
}
