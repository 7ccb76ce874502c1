export * from './sensitive.ts';
export * from './command.ts';
export * from './executor.ts';
export { LocalExecutor } from './local.ts';
export { RecordingExecutor, type Responder } from './recording.ts';
