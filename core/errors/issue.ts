/** One problem with one input field. `path` is slash-separated (`servers/0/host`), or the field name. */
export interface Issue {
  path: string;
  message: string;
}

/** `servers/0/host: expected string` — one line per issue, in the order found. */
export function formatIssues(issues: readonly Issue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('\n');
}

/**
 * Joins zod-style path segments into our slash form. A segment that would be invisible or ambiguous
 * (empty, edged with spaces, or holding `/` or control characters — e.g. a YAML key `""`) is quoted,
 * so every path names its field.
 */
export function joinPath(segments: readonly PropertyKey[]): string {
  return segments
    .map((s) => {
      const t = String(s);
      return t === '' || t.trim() !== t || /[/\p{Cc}]/u.test(t) ? JSON.stringify(t) : t;
    })
    .join('/');
}
