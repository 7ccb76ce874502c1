import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Field paths pino replaces with `[REDACTED]` wherever they appear in a log line. */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'secrets',
  '*.secrets',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["x-hub-signature-256"]',
  'env',
  '*.env',
];

/**
 * Secrets that arrive inside strings rather than named fields, scrubbed from every finished line:
 * credentials in URLs (`https://user:pass@host`), and credential query parameters (`?token=`,
 * S3 presigned `X-Amz-Signature=` / `X-Amz-Credential=`).
 */
export const REDACT_PATTERNS: readonly [RegExp, string][] = [
  [/([a-z][a-z0-9+.-]*:\/\/)[^/\s:@"]*:[^/\s@"]+@/gi, '$1[REDACTED]@'],
  [/([?&](?:token|access_token|secret|password|signature|sig|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s"#]+/gi, '$1[REDACTED]'],
];

export interface LoggerSettings {
  level?: string;
  name?: string;
  /** Where lines go; defaults to stderr so stdout stays clean for command output. */
  destination?: NodeJS.WritableStream;
  /** More string patterns to scrub, e.g. a route whose path carries a grant. */
  redactPatterns?: readonly [RegExp, string][];
}

/** The one way to make a logger: JSON lines, secrets redacted, events named in `msg`, data in fields. */
export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    base: settings.name ? { name: settings.name } : null,
    hooks: {
      streamWrite: (line) => [...REDACT_PATTERNS, ...(settings.redactPatterns ?? [])].reduce((out, [re, to]) => out.replace(re, to), line),
    },
  };
  return pino(options, (settings.destination ?? process.stderr) as pino.DestinationStream);
}
