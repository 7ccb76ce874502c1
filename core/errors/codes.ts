/**
 * Error kinds shared by every process. The mapping to exit codes and HTTP statuses is data, in one
 * place, so the CLI and the API agree on what a kind of failure means.
 */
export const ERROR_CODES = {
  usage: { exit: 2, http: 400 },
  validation: { exit: 2, http: 400 },
  unauthorized: { exit: 3, http: 401 },
  forbidden: { exit: 3, http: 403 },
  not_found: { exit: 4, http: 404 },
  conflict: { exit: 5, http: 409 },
  unsupported: { exit: 6, http: 422 },
  unavailable: { exit: 7, http: 503 },
  external: { exit: 8, http: 502 },
  /** The user's build itself failed (compile error, release too new for its target): final, not retried. */
  build_failed: { exit: 9, http: 422 },
  /** Stopped on request. */
  cancelled: { exit: 10, http: 409 },
  /** A user's deploy hook (.xamal/hooks/NAME) exited non-zero: the command stops there. */
  hook_failed: { exit: 11, http: 500 },
  internal: { exit: 1, http: 500 },
} as const satisfies Record<string, { exit: number; http: number }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function exitCodeFor(code: ErrorCode): number {
  return ERROR_CODES[code].exit;
}

export function httpStatusFor(code: ErrorCode): number {
  return ERROR_CODES[code].http;
}
