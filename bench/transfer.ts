/**
 * P7 (issue #9) — getting an artifact onto 5 hosts at once, both ways the deployer can:
 *   pull: each host downloads it itself from a short-lived farm link (the API streams it from the
 *         S3 store), `pullReleaseCommand` (download, sha256, unpack);
 *   sftp: the deployer uploads it to every host over its pooled SSH connection (ssh2 fastPut), then
 *         `unpackUploadedCommand` (sha256, unpack).
 * Reported as aggregate MB/s (hosts × size ÷ wall time), for the transfer alone and for the whole
 * staging (transfer + verify + unpack). Artifacts: incompressible tarballs of the given sizes
 * (examples/hello's release is ~6 MB). Pull and SFTP alternate within each run.
 *
 *   npx tsx bench/transfer.ts [--runs 5] [--hosts 5] [--sizes 6,64]
 *
 * Runs as root (test hosts); needs the local services (`npx xamal farm services up`).
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { artifactKey, artifactManifestKey, command, parseTargetOrThrow, sensitive } from '../core/index.ts';
import type { Manifest } from '../core/contracts/manifest.ts';
import { serviceEndpoints, servicesConfig, servicesUp } from '../localservices/index.ts';
import { appLayout } from '../deployer/commands/layout.ts';
import { pullFailure, pullReleaseCommand, unpackUploadedCommand, uploadPath } from '../deployer/commands/release.ts';
import { sshPool } from '../deployer/ssh.ts';
import { labDeps, upLab } from '../testkit/hosts/index.ts';
import { startTestFarm } from '../testkit/farm.ts';
import { median } from './farm.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, hosts: { type: 'string', default: '5' }, sizes: { type: 'string', default: '6,64' } } });
const runs = Number(values.runs);
const n = Number(values.hosts);
const sizes = values.sizes!.split(',').map(Number);
const say = (l: string) => process.stderr.write(`[transfer-bench] ${l}\n`);
const sc = servicesConfig();
await servicesUp(sc, ['redis', 'dockerd', 'registry', 's3'], say);
const tmp = await mkdtemp(join(tmpdir(), 'xamal-bench-transfer-'));
const TOKEN = randomBytes(20).toString('hex');
const lab = await upLab(labDeps(), { suites: Array.from({ length: n }, () => 'bookworm' as const) });
const pool = sshPool({ user: 'deploy', port: 22, keys: [lab.privateKeyPath], keyData: [], connectTimeoutMs: 5_000, knownHostsPath: lab.knownHostsPath, hostKeys: {}, trustNewHosts: false });
const layout = appLayout('xfer', undefined);
const TUPLE = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';


try {
  const farm = await startTestFarm({ services: serviceEndpoints(sc), prefix: `bench-xfer-${randomBytes(3).toString('hex')}`, host: lab.gateway, token: TOKEN, workDir: tmp, cacheDir: join(tmp, 'cache') });
  const sessions = await Promise.all(lab.hosts.map((h) => pool.session(h.address)));
  await Promise.all(sessions.map((s) => s.run({ argv: ['sudo', '-n', 'sh', '-c', `mkdir -p ${layout.releases} ${layout.tmp} && chown -R deploy: ${layout.root}`] })));
  const rows: string[] = [];
  for (const mb of sizes) {
    // An incompressible "release" of `mb` MB, stored with its manifest as the builder stores one.
    const version = createHash('sha1').update(`xfer-${mb}-${Date.now()}`).digest('hex');
    const rel = join(tmp, `rel-${mb}`);
    await mkdir(rel, { recursive: true });
    await writeFile(join(rel, 'blob'), randomBytes(mb << 20));
    const file = join(tmp, `rel-${mb}.tar.gz`);
    execFileSync('tar', ['-czf', file, '-C', rel, '.']);
    const body = await readFile(file);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const ref = { app: 'xfer', version, target: parseTargetOrThrow(TUPLE) };
    const manifest: Manifest = {
      schema: 1, app: 'xfer', release: 'xfer', releaseVersion: '0.1.0', version, commit: version, tuple: TUPLE, mixEnv: 'prod',
      tarball: { key: artifactKey(ref), sha256, size: body.length },
      image: { ref: 'r:t', digest: `sha256:${'b'.repeat(64)}` }, cacheKeys: { deps: 'd', build: 'b' }, glibcNeeded: '2.34',
      sonames: ['libc.so.6'], timings: {}, logKey: 'logs/x.log', builtAt: new Date().toISOString(), jobId: 'bx',
    };
    await farm.store.put(artifactKey(ref), body);
    await farm.store.put(artifactManifestKey(ref), JSON.stringify(manifest));
    const total = (body.length * n) / 1e6;
    const res = { pullXfer: [] as number[], pullAll: [] as number[], sftpXfer: [] as number[], sftpAll: [] as number[] };

    const pull = async (run: number) => {
      const links = await Promise.all(sessions.map(() => farm.client.downloadLink('xfer', version, TUPLE)));
      // Transfer alone: curl to the host's disk.
      let t = performance.now();
      await Promise.all(
        sessions.map(async (s, i) => {
          const r = await s.run(command(['sh', '-c', 'curl -fsS -o "$1" "$XAMAL_DOWNLOAD_URL"', 'sh', `${layout.tmp}/dl`], { env: { XAMAL_DOWNLOAD_URL: sensitive(links[i]!.url) }, timeoutMs: 600_000 }));
          if (r.code !== 0) throw new Error(`${s.host}: curl: ${r.stderr}`);
        }),
      );
      res.pullXfer.push(performance.now() - t);
      await Promise.all(sessions.map((s) => s.run({ argv: ['rm', '-f', `${layout.tmp}/dl`] })));
      const fresh = await Promise.all(sessions.map(() => farm.client.downloadLink('xfer', version, TUPLE)));
      t = performance.now();
      await Promise.all(
        sessions.map(async (s, i) => {
          const r = await s.run(pullReleaseCommand({ layout, version: `p${run}`, sha256 }, fresh[i]!.url));
          if (r.code !== 0 || r.stdout.trim() !== 'pulled') throw pullFailure(s.host, `p${run}`, r);
        }),
      );
      res.pullAll.push(performance.now() - t);
    };
    const sftp = async (run: number) => {
      const req = { layout, version: `u${run}`, sha256 };
      const t = performance.now();
      await Promise.all(sessions.map((s) => s.upload(file, uploadPath(req))));
      res.sftpXfer.push(performance.now() - t);
      await Promise.all(
        sessions.map(async (s) => {
          const r = await s.run(unpackUploadedCommand(req));
          if (r.code !== 0 || r.stdout.trim() !== 'pulled') throw pullFailure(s.host, req.version, r);
        }),
      );
      res.sftpAll.push(performance.now() - t);
    };
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) await pull(i), await sftp(i);
      else await sftp(i), await pull(i);
      await Promise.all(sessions.map((s) => s.run({ argv: ['sh', '-c', `rm -rf ${layout.releases}/* ${layout.tmp}/*`] })));
      say(`${mb} MB run ${i + 1}: pull ${(total / (res.pullXfer.at(-1)! / 1000)).toFixed(0)} MB/s (staged ${(total / (res.pullAll.at(-1)! / 1000)).toFixed(0)}), sftp ${(total / (res.sftpXfer.at(-1)! / 1000)).toFixed(0)} MB/s (staged ${(total / (res.sftpAll.at(-1)! / 1000)).toFixed(0)})`);
    }
    const rate = (ms: number[]) => {
      const r = ms.map((x) => total / (x / 1000));
      return `${median(r).toFixed(0)} MB/s (${Math.min(...r).toFixed(0)}–${Math.max(...r).toFixed(0)}; ${(median(ms) / 1000).toFixed(2)} s)`;
    };
    rows.push(`| ${(body.length / 1e6).toFixed(1)} MB × ${n} hosts | host pull (farm link) | ${rate(res.pullXfer)} | ${rate(res.pullAll)} |`);
    rows.push(`| ${(body.length / 1e6).toFixed(1)} MB × ${n} hosts | SFTP upload from the deployer | ${rate(res.sftpXfer)} | ${rate(res.sftpAll)} |`);
  }
  console.log('| artifact | path | transfer: aggregate MB/s, median (min–max; wall) | staged (transfer + sha256 + unpack) |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(r);
  await farm.close();
} finally {
  await pool.close();
  await lab.down();
  await rm(tmp, { recursive: true, force: true });
}
