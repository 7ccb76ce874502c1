/**
 * Error kinds shared by every process. The mapping to exit codes and HTTP statuses is data, in one
 * place, so the CLI and the API agree on what a kind of failure means.
 */
export const ERROR_CODES = {
  usage: { exit: 2, http: 400, meaning: 'bad command line' },
  validation: { exit: 2, http: 400, meaning: 'invalid input or configuration (every problem listed with its path)' },
  unauthorized: { exit: 3, http: 401, meaning: 'no or unknown credentials' },
  forbidden: { exit: 3, http: 403, meaning: 'credentials lack the scope' },
  not_found: { exit: 4, http: 404, meaning: 'nothing matches (artifact, release, host)' },
  conflict: { exit: 5, http: 409, meaning: 'busy or conflicting (e.g. the deploy lock is held)' },
  unsupported: { exit: 6, http: 422, meaning: 'no target/artifact fits (reasons listed)' },
  unavailable: { exit: 7, http: 503, meaning: 'a service is unreachable (Redis, store, farm, host)' },
  external: { exit: 8, http: 502, meaning: 'an external system failed (Docker, SSH, Caddy, registry)' },
  /** The user's build itself failed (compile error, release too new for its target): final, not retried. */
  build_failed: { exit: 9, http: 422, meaning: 'a build failed (compile error, release too new for its target)' },
  /** Stopped on request. */
  cancelled: { exit: 10, http: 409, meaning: 'stopped on request' },
  /** A user's deploy hook (.xamal/hooks/NAME) exited non-zero: the command stops there. */
  hook_failed: { exit: 11, http: 500, meaning: 'a deploy hook exited non-zero' },
  /**
   * An artifact's signature, provenance or checksum did not verify (deployer/verify.ts): nothing runs
   * it. The deployer's alone; the API never answers it (its HTTP status is only the table's shape).
   */
  verification_failed: { exit: 12, http: 422, meaning: 'an artifact failed verification (signature, provenance, checksum)' },
  /** The new version failed its watch after the switch (rollout.watch) and the previous one was switched back by itself. */
  rolled_back: { exit: 13, http: 500, meaning: 'the new version failed after the switch and was rolled back' },
  internal: { exit: 1, http: 500, meaning: 'a bug in xamal' },
} as const satisfies Record<string, { exit: number; http: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function exitCodeFor(code: ErrorCode): number {
  return ERROR_CODES[code].exit;
}

export function httpStatusFor(code: ErrorCode): number {
  return ERROR_CODES[code].http;
}
