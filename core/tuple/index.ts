export * from './arch.ts';
export * from './version.ts';
export * from './tuple.ts';
export * from './selector.ts';
export * from './host.ts';
export * from './compat.ts';
export * from './probe-output.ts';
