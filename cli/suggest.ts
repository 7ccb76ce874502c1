import { distance } from 'fastest-levenshtein';

/**
 * "Did you mean": the candidate nearest to what was typed, when it is near enough to be a typo (at
 * most a third of its length in edits, at least one); undefined otherwise.
 */
export function nearest(typed: string, candidates: readonly string[]): string | undefined {
  let best: { word: string; d: number } | undefined;
  for (const word of candidates) {
    const d = distance(typed, word);
    if (d > 0 && (!best || d < best.d)) best = { word, d };
  }
  return best && best.d <= Math.max(1, Math.floor(typed.length / 3)) ? best.word : undefined;
}

/** `; did you mean "x"?` for a near candidate, else nothing. */
export function didYouMean(typed: string, candidates: readonly string[]): string {
  const n = nearest(typed, candidates);
  return n ? `; did you mean ${JSON.stringify(n)}?` : '';
}
