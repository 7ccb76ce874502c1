export * from './errors/index.ts';
export * from './target/index.ts';
export * from './exec/index.ts';
export * from './names.ts';
export * from './artifact-key.ts';
export { createLogger, REDACT_PATHS, type Logger, type LoggerSettings } from './logger.ts';
