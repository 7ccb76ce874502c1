import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { builderConfig } from '../../../builder/config.ts';
import { DEFAULT_DOCKER_CALL_TIMEOUT_MS, dockerEngine, type ContainerSpec } from '../../../builder/docker.ts';

/** A unix socket that accepts every connection, reads the request and never answers (a hung dockerd). */
async function silentEngine(): Promise<{ server: Server; socketPath: string; sockets: Socket[]; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'xamal-hung-dockerd-'));
  const socketPath = join(dir, 'docker.sock');
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.resume();
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  return { server, socketPath, sockets, dir };
}

describe('a Docker engine that accepts calls and never answers', () => {
  let hung: Awaited<ReturnType<typeof silentEngine>> | undefined;
  afterEach(async () => {
    for (const s of hung?.sockets ?? []) s.destroy();
    await new Promise((r) => hung?.server.close(r));
    if (hung) rmSync(hung.dir, { recursive: true, force: true });
  });

  it('fails a step container, a held one, a removal, a listing and the version as unavailable after the call timeout, naming the call and the setting, instead of hanging', async () => {
    hung = await silentEngine();
    const engine = dockerEngine(hung.socketPath, 300);
    const spec: ContainerSpec = { image: 'xamal/builder@sha256:' + 'a'.repeat(64), cmd: ['true'], networkMode: 'none' };
    const calls: [string, () => Promise<unknown>][] = [
      ['run', () => engine.run(spec)],
      ['start', () => engine.startHeld(spec)],
      ['remove container', () => engine.removeContainer('c'.repeat(64))],
      ['list containers', () => engine.containersWithLabel('xamal.job', 'j1')],
      ['version', () => engine.version()],
    ];
    for (const [what, call] of calls) {
      const t0 = Date.now();
      await expect(call()).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(new RegExp(`^docker engine at .*docker\\.sock did not answer ${what}.* within 300 ms \\(XAMAL_DOCKER_CALL_TIMEOUT_MS\\)$`)) });
      expect(Date.now() - t0).toBeLessThan(15_000);
    }
    expect(await engine.ping()).toBe(false);
    // Every call reached the engine: the deadline, not a refused connection, ended it.
    expect(hung.sockets.length).toBeGreaterThanOrEqual(calls.length + 1);
  }, 60_000);

  it('XAMAL_DOCKER_CALL_TIMEOUT_MS sets it (default 60 s); a value that is not whole milliseconds of at least 100 is refused naming the variable', () => {
    expect(builderConfig({ XAMAL_DOCKER_CALL_TIMEOUT_MS: '5000' }).dockerCallTimeoutMs).toBe(5000);
    expect(builderConfig({}).dockerCallTimeoutMs).toBe(DEFAULT_DOCKER_CALL_TIMEOUT_MS);
    for (const bad of ['fast', '50', '1.5']) expect(() => builderConfig({ XAMAL_DOCKER_CALL_TIMEOUT_MS: bad })).toThrow(/XAMAL_DOCKER_CALL_TIMEOUT_MS/);
  });
});
