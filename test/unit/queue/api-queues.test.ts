import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { buildQueues } from '../../../queue/index.ts';

/** A TCP server that accepts and never answers: a Redis that is there but silent. */
async function silentServer(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, sockets };
}

describe("the API's build queues while Redis is silent", () => {
  const rejections: unknown[] = [];
  const onRejection = (err: unknown) => rejections.push(err);
  afterEach(() => {
    process.off('unhandledRejection', onRejection);
  });

  it('answer unavailable within their timeout naming where Redis was expected; dropping the queues leaks no unhandled rejection when the connection then fails', async () => {
    process.on('unhandledRejection', onRejection);
    const silent = await silentServer();
    const queues = buildQueues({ redisUrl: `redis://127.0.0.1:${silent.port}`, timeoutMs: 300 }, ['x86_64']);
    const t0 = Date.now();
    await expect(queues.status('a'.repeat(40))).rejects.toThrow(`build queue unavailable: Redis at 127.0.0.1:${silent.port} did not answer status within 300 ms`);
    expect(Date.now() - t0).toBeLessThan(2_000);
    // The connection that was still starting fails now (the server hangs up).
    for (const s of silent.sockets) s.destroy();
    await new Promise<void>((r) => silent.server.close(() => r()));
    await new Promise((r) => setTimeout(r, 500));
    await queues.close();
    expect(rejections.map(String)).toEqual([]);
  });
});
