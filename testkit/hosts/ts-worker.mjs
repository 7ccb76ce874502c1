// Starts a worker thread on a TypeScript module: tsx's loader registered in this thread, then the
// module named by workerData.entry imported (worker threads do not inherit tsx's loader).
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
