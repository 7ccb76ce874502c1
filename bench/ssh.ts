/**
 * SSH executor (issue #7): per-command time of N sequential commands over one pooled ssh2
 * connection (TCP no-delay), against a fresh connection per command, on a real test host.
 *
 *   npx tsx bench/ssh.ts [--runs 5] [--commands 100]
 *
 * Runs as root (test hosts). Prints markdown table rows.
 */
import { parseArgs } from 'node:util';
import { sshPool, type SshOptions } from '../deployer/ssh.ts';
import { labDeps, upLab } from '../testkit/hosts/index.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, commands: { type: 'string', default: '100' } } });
const runs = Number(values.runs);
const n = Number(values.commands);
const lab = await upLab(labDeps(), { suites: ['bookworm'] });
const h = lab.hosts[0]!;
const opts: SshOptions = { user: 'deploy', port: 22, keys: [lab.privateKeyPath], keyData: [], connectTimeoutMs: 5_000, knownHostsPath: lab.knownHostsPath, hostKeys: {}, trustNewHosts: false };
const pooled: number[] = [];
const fresh: number[] = [];
try {
  for (let r = 0; r < runs; r++) {
    const pool = sshPool(opts);
    const s = await pool.session(h.address);
    let t0 = performance.now();
    for (let i = 0; i < n; i++) await s.run({ argv: ['true'] });
    pooled.push((performance.now() - t0) / n);
    await pool.close();
    t0 = performance.now();
    const m = Math.max(10, Math.floor(n / 10));
    for (let i = 0; i < m; i++) {
      const p = sshPool(opts);
      await (await p.session(h.address)).run({ argv: ['true'] });
      await p.close();
    }
    fresh.push((performance.now() - t0) / m);
    process.stderr.write(`run ${r + 1}: pooled ${pooled.at(-1)!.toFixed(2)} ms, new connection ${fresh.at(-1)!.toFixed(1)} ms\n`);
  }
} finally {
  await lab.down();
}
const stats = (xs: number[], d: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[Math.floor(s.length / 2)]!.toFixed(d)} ms | ${s[0]!.toFixed(d)}–${s.at(-1)!.toFixed(d)} ms`;
};
console.log(`| ${n} sequential commands, one pooled connection: per command | ${stats(pooled, 2)} |`);
console.log(`| a new connection per command (handshake + auth + exec) | ${stats(fresh, 1)} |`);
