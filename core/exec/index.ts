export * from './sensitive.ts';
export * from './command.ts';
export * from './executor.ts';
export { LocalExecutor, SYSTEM_ENV, runPipelineToFile, spawnStreaming, type StreamingProcess } from './local.ts';
export { RecordingExecutor, type Responder } from './recording.ts';
export { deadline } from './deadline.ts';
