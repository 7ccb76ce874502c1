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

export interface LoggerSettings {
  level?: string;
  name?: string;
  /** Where lines go; defaults to stderr so stdout stays clean for command output. */
  destination?: NodeJS.WritableStream;
}

/** The one way to make a logger: JSON lines, secrets redacted, events named in `msg`, data in fields. */
export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    base: settings.name ? { name: settings.name } : null,
  };
  return pino(options, (settings.destination ?? process.stderr) as pino.DestinationStream);
}
