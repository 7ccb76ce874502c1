/** One problem with one input field. `path` is slash-separated (`servers/0/host`), or the field name. */
export interface Issue {
  path: string;
  message: string;
}

/** `servers/0/host: expected string` — one line per issue, in the order found. */
export function formatIssues(issues: readonly Issue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('\n');
}

/** Joins zod-style path segments into our slash form. */
export function joinPath(segments: readonly PropertyKey[]): string {
  return segments.map((s) => String(s)).join('/');
}
