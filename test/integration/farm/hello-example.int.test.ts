import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Builds the examples/hello fixture with `mix release` and checks the behaviour
// the deployer relies on: health check, keep-alive, graceful drain on SIGTERM.

const EXAMPLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/hello');
const BUILD_TIMEOUT_MS = 230_000;
const UP_TIMEOUT_MS = 30_000;
const REVISION = 'abc123';

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
  socket: Socket | undefined;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const tempDirs: string[] = [];
let appDir = '';
let port = 0;
let release: ChildProcess | undefined;
let exited: Promise<Exit> | undefined;
let output = '';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeout: number }) {
  return new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env, timeout: opts.timeout, killSignal: 'SIGKILL', maxBuffer: 32 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`${cmd} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port assigned'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

function get(urlPath: string, agent: http.Agent | false = false, timeoutMs = 10_000): Promise<Response> {
  return new Promise((resolve, reject) => {
    let socket: Socket | undefined;
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reusedSocket: req.reusedSocket, socket });
      });
      res.on('error', reject);
    });
    req.on('socket', (s) => {
      socket = s;
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${urlPath} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Resolves with the error code of a failed TCP connect, or 'connected'. */
function tryConnect(timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code ?? error.message);
    });
  });
}

async function waitForUp(): Promise<void> {
  const deadline = Date.now() + UP_TIMEOUT_MS;
  let lastError = '';
  while (Date.now() < deadline) {
    if (release?.exitCode !== null || release?.signalCode !== null) {
      throw new Error(`release exited before /up answered:\n${output}`);
    }
    try {
      const res = await get('/up', false, 1_000);
      if (res.status === 200) return;
      lastError = `status ${res.status}`;
    } catch (error) {
      lastError = (error as Error).message;
    }
    await sleep(200);
  }
  throw new Error(`/up did not answer within ${UP_TIMEOUT_MS} ms (${lastError}):\n${output}`);
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['MIX_BUILD_PATH', 'MIX_BUILD_ROOT', 'MIX_DEPS_PATH', 'MIX_EXS', 'MIX_LOCKFILE', 'MIX_TARGET', 'ERL_LIBS']) {
    delete env[name];
  }
  return env;
}

describe('examples/hello release', () => {
  beforeAll(async () => {
    const workDir = await makeTempDir('xamal-hello-src-');
    const home = await makeTempDir('xamal-hello-home-');
    const releaseTmp = await makeTempDir('xamal-hello-reltmp-');

    appDir = path.join(workDir, 'hello');
    await cp(EXAMPLE_DIR, appDir, {
      recursive: true,
      filter: (src) => {
        const rel = path.relative(EXAMPLE_DIR, src);
        return !['_build', 'deps', '.elixir_ls'].includes(rel.split(path.sep)[0] ?? '');
      },
    });

    const buildEnv: NodeJS.ProcessEnv = {
      ...cleanEnv(),
      MIX_ENV: 'prod',
      HOME: home,
      MIX_HOME: path.join(home, '.mix'),
      HEX_HOME: path.join(home, '.hex'),
      HEX_OFFLINE: '1',
    };
    await run('mix', ['release', '--overwrite'], { cwd: appDir, env: buildEnv, timeout: BUILD_TIMEOUT_MS });

    port = await freePort();
    const child = spawn(path.join(appDir, '_build/prod/rel/hello/bin/hello'), ['start'], {
      cwd: appDir,
      env: {
        ...cleanEnv(),
        HOME: home,
        PORT: String(port),
        BIND: '127.0.0.1',
        RELEASE_DISTRIBUTION: 'none',
        RELEASE_TMP: releaseTmp,
        XAMAL_REVISION: REVISION,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group, so afterAll can kill everything it started.
      detached: true,
    });
    release = child;
    exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });

    await waitForUp();
  }, 240_000);

  afterAll(async () => {
    const child = release;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      if (exited) await withTimeout(exited, 10_000, 'release to die').catch(() => undefined);
    }
    await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }, 30_000);

  it('answers GET /up with 200 and its version and revision', async () => {
    const res = await get('/up');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(res.body)));
    const json = JSON.parse(res.body) as Record<string, unknown>;
    expect(json).toMatchObject({ status: 'ok', app: 'hello', version: '0.1.0', revision: REVISION });
    expect(typeof json['node']).toBe('string');
  }, 60_000);

  it('serves keep-alive requests on one connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get('/up', agent);
      const second = await get('/compute?n=7', agent);
      const third = await get('/up', agent);

      expect([first.status, second.status, third.status]).toEqual([200, 200, 200]);
      expect(second.body).toMatch(/^\d+$/);
      expect(first.headers['connection']).toBe('keep-alive');
      expect(first.reusedSocket).toBe(false);
      expect(second.reusedSocket).toBe(true);
      expect(third.reusedSocket).toBe(true);
      expect(first.socket).toBeDefined();
      expect(second.socket).toBe(first.socket);
      expect(third.socket).toBe(first.socket);
    } finally {
      agent.destroy();
    }
  }, 60_000);

  it('finishes an in-flight request after SIGTERM and exits 0', async () => {
    const child = release;
    if (child?.pid === undefined || exited === undefined) throw new Error('release is not running');

    let slowDone = false;
    const slow = get('/slow?ms=2000', false, 20_000).finally(() => {
      slowDone = true;
    });
    await sleep(300);
    process.kill(child.pid, 'SIGTERM');

    // The listener closes its socket first: new connections are refused
    // while the slow request is still being served.
    let refusedDuringDrain = '';
    const drainDeadline = Date.now() + 1_500;
    while (Date.now() < drainDeadline) {
      refusedDuringDrain = await tryConnect(500);
      if (refusedDuringDrain === 'ECONNREFUSED') break;
      await sleep(50);
    }
    expect(refusedDuringDrain).toBe('ECONNREFUSED');
    expect(slowDone).toBe(false);

    const res = await withTimeout(slow, 20_000, 'in-flight /slow request');
    expect(res.status).toBe(200);
    expect(res.body).toBe('slept 2000');
    expect(res.headers['connection']).toBe('close');

    const exit = await withTimeout(exited, 30_000, 'release to exit after SIGTERM');
    expect(exit, output).toEqual({ code: 0, signal: null });
    expect(await tryConnect()).toBe('ECONNREFUSED');
    expect(output).toContain(`hello listening on 127.0.0.1:${port} revision=${REVISION}`);
    expect(output).toContain('hello drain finished');
  }, 60_000);
});
