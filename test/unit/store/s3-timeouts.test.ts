import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { storeConfig } from '../../../store/config.ts';
import { s3Store } from '../../../store/s3.ts';

/** A TCP server on loopback that accepts every connection and never answers (a hung store). */
async function silentServer(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.resume();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, sockets };
}

describe('an S3 store that accepts connections and never answers', () => {
  let silent: Awaited<ReturnType<typeof silentServer>> | undefined;
  afterEach(async () => {
    for (const s of silent?.sockets ?? []) s.destroy();
    await new Promise((r) => silent?.server.close(r));
  });

  it('fails put, get and exists as unavailable after its timeout (and the SDK retries), instead of hanging', async () => {
    silent = await silentServer();
    const store = s3Store({ endpoint: `http://127.0.0.1:${silent.port}`, region: 'us-east-1', bucket: 'xamal', accessKeyId: 'a', secretAccessKey: 'b', forcePathStyle: true, timeoutMs: 300 });
    for (const op of [() => store.put('k/one', 'x'), () => store.get('k/one'), () => store.exists('k/one')]) {
      const t0 = Date.now();
      await expect(op()).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/^store: (put|get|head) k\/one failed: /) });
      expect(Date.now() - t0).toBeLessThan(15_000);
    }
    // Each attempt got a connection of its own, and none of them answered.
    expect(silent.sockets.length).toBeGreaterThanOrEqual(3);
  }, 60_000);

  it('XAMAL_S3_TIMEOUT_MS sets it; a value that is not whole milliseconds of at least 100 is refused naming the variable', () => {
    const env = { XAMAL_S3_BUCKET: 'xamal' };
    expect(storeConfig('/state', { ...env, XAMAL_S3_TIMEOUT_MS: '5000' })).toMatchObject({ kind: 's3', timeoutMs: 5000 });
    expect(storeConfig('/state', env)).not.toHaveProperty('timeoutMs');
    for (const bad of ['fast', '50', '1.5']) expect(() => storeConfig('/state', { ...env, XAMAL_S3_TIMEOUT_MS: bad })).toThrow(/XAMAL_S3_TIMEOUT_MS/);
  });
});
