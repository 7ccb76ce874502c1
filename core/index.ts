export * from './errors/index.ts';
export * from './tuple/index.ts';
export * from './exec/index.ts';
export * from './names.ts';
export * from './files.ts';
export * from './store-keys.ts';
export { timed } from './timing.ts';
export { createLogger, REDACT_PATHS, type Logger, type LoggerSettings } from './logger.ts';
export * from './project-versions.ts';
