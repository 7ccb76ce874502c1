import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { serviceEndpoints, serviceSpec, servicesConfig } from '../localservices/index.ts';

/** A TCP port nobody listens on right now (loopback). */
export async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => probe.once('listening', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  return port;
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.end(), resolve(true)));
    s.once('error', () => resolve(false));
  });

export interface OwnRedis {
  url: string;
  port: number;
  /** SIGKILL: Redis is gone at once, as after a crash or a network cut. */
  kill(): void;
  /** SIGTERM (Redis writes its AOF and exits); resolves once it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory; resolves once it listens. */
  restart(): Promise<void>;
}

/** A redis-server of a test's own (the farm's flags and config: AOF, noeviction, a password) on a free port, data under `dir`; up when this resolves. */
export async function startOwnRedis(dir: string): Promise<OwnRedis> {
  const port = await freePort();
  const config = { ...servicesConfig(), redisPort: port, stateDir: dir };
  const spec = serviceSpec(config, 'redis');
  await mkdir(join(dir, 'redis'), { recursive: true });
  for (const f of spec.files) await writeFile(f.path, f.content, { mode: f.mode ?? 0o644 });
  let child: ChildProcess;
  const running = () => child.exitCode === null && child.signalCode === null;
  const start = async () => {
    child = spawn(spec.argv[0]!, spec.argv.slice(1), { stdio: 'ignore' });
    for (let i = 0; i < 100 && !(await accepts(port)); i++) await new Promise((r) => setTimeout(r, 100));
    if (!(await accepts(port))) throw new Error(`redis-server did not listen on 127.0.0.1:${port} within 10 s`);
  };
  await start();
  return {
    url: serviceEndpoints(config).redisUrl,
    port,
    kill: () => {
      if (running()) child.kill('SIGKILL');
    },
    async stop() {
      if (!running()) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
    restart: start,
  };
}
