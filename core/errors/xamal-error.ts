import type { ErrorCode } from './codes.ts';

/**
 * The one base class for errors we expect and can explain. Anything else reaching a top-level handler
 * is a bug and is reported as `internal` without its details.
 */
export class XamalError extends Error {
  readonly code: ErrorCode;
  /** Extra facts safe to show to the user (never secrets). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'XamalError';
    this.code = code;
    this.details = options.details;
  }
}

export function isXamalError(err: unknown): err is XamalError {
  return err instanceof XamalError;
}
