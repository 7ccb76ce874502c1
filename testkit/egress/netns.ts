import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalExecutor, runChecked, type Command } from '../../core/index.ts';

/**
 * A network namespace of the test's own on a veth pair (no default route inside), holding two
 * addresses of this machine's lab range: a static HTTP server answers on both (port 80), so a test
 * can allow one address and see the other refused. Nothing leaves this machine.
 */
export interface TestNetns {
  name: string;
  /** Served from `dir` on port 80 (allowed in the test). */
  allowed: string;
  /** The same server on another address (never allowed). */
  other: string;
  /** This machine's own end of the pair (a lab address, not loopback): a test's server listening here is reached through the egress proxy. */
  hostSide: string;
  close(): Promise<void>;
}

const exec = new LocalExecutor();
const ip = (...argv: string[]): Command => ({ argv: ['ip', ...argv], label: `ip ${argv.slice(0, 3).join(' ')}`, timeoutMs: 10_000 });
const NET_PREFIX = '10.214';

async function freeOctet(): Promise<number> {
  const r = await runChecked(exec, ip('-4', '-o', 'addr', 'show'));
  const used = new Set([...r.stdout.matchAll(/inet 10\.214\.(\d+)\./g)].map((m) => Number(m[1])));
  for (let i = 0; i < 250; i++) {
    const octet = ((process.pid + i) % 250) + 1;
    if (!used.has(octet)) return octet;
  }
  throw new Error(`no free ${NET_PREFIX}.X.0/29 for a test namespace`);
}

async function waitForLine(child: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`static server did not start within ${timeoutMs} ms`)), timeoutMs);
    child.stdout?.on('data', (b: Buffer) => b.toString().includes(text) && (clearTimeout(timer), resolve()));
    child.on('exit', (code) => (clearTimeout(timer), reject(new Error(`static server exited with ${code}`))));
  });
}

/** Starts the namespace and its server over `dir`; `close()` removes both. */
export async function upTestNetns(tag: string, dir: string): Promise<TestNetns> {
  const octet = await freeOctet();
  const name = `xeg-${tag}-${process.pid}`.slice(0, 15);
  const [hostIf, nsIf] = [`xeg${octet}h`, `xeg${octet}n`];
  const net = `${NET_PREFIX}.${octet}`;
  const steps = [
    ip('netns', 'add', name),
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf),
    ip('link', 'set', nsIf, 'netns', name),
    ip('addr', 'add', `${net}.1/29`, 'dev', hostIf),
    ip('link', 'set', hostIf, 'up'),
    ip('-n', name, 'addr', 'add', `${net}.2/29`, 'dev', nsIf),
    ip('-n', name, 'addr', 'add', `${net}.3/29`, 'dev', nsIf),
    ip('-n', name, 'link', 'set', nsIf, 'up'),
    ip('-n', name, 'link', 'set', 'lo', 'up'),
  ];
  const close = async () => {
    server?.kill('SIGKILL');
    await exec.run(ip('link', 'del', hostIf));
    await exec.run(ip('netns', 'del', name));
  };
  let server: ChildProcess | undefined;
  try {
    for (const s of steps) await runChecked(exec, s);
    const script = join(dirname(fileURLToPath(import.meta.url)), 'static-server.mjs');
    server = spawn('ip', ['netns', 'exec', name, process.execPath, script, dir, '80'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await waitForLine(server, 'listening', 10_000);
    return { name, allowed: `${net}.2`, other: `${net}.3`, hostSide: `${net}.1`, close };
  } catch (err) {
    await close();
    throw err;
  }
}
