/**
 * The farm's queues on BullMQ and ioredis: the only folder that imports either. One file per role —
 * connection settings (connection.ts), producer (enqueue), consumer (workers), cancel (pub/sub), the
 * artifact generation counter, the API's facade (api-queues.ts), the operators' inspector and the
 * webhook delivery ledger (deliveries.ts).
 */
export * from './connection.ts';
export * from './producer.ts';
export * from './consumer.ts';
export * from './cancel.ts';
export * from './generation.ts';
export * from './api-queues.ts';
export * from './inspector.ts';
export * from './deliveries.ts';
