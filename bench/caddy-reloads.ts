/**
 * What a Caddy config reload does to new TLS connections (FACTS.md#caddy): Debian's caddy on
 * loopback (admin 127.0.0.1:12019, HTTPS :18443, storage in a temporary directory) with two hosts
 * under internal TLS; 8 loops of fresh TLS handshakes to `b.lab.test` while `a.lab.test`'s route and
 * TLS policy are removed and added again, one `POST /load` each, 100 ms apart. Prints, per run, the
 * handshakes that completed and the failures by error. Bounded: `--reloads` per run, each loop stops
 * with the run, every handshake times out after 5 s, a run after 120 s at most.
 *
 *   npx tsx bench/caddy-reloads.ts [--runs 5] [--reloads 40] [--automate]
 *
 * `--automate` also lists the hosts under `tls.certificates.automate` (the TLS app loads their
 * certificates when it starts, instead of the HTTP app after its servers serve).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensurePackages } from '../localservices/index.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, reloads: { type: 'string', default: '40' }, automate: { type: 'boolean', default: false } } });
const ADMIN = 12019;
const HTTPS = 18443;
const RUN_LIMIT_MS = 120_000;

const config = (storage: string, apps: string[]) => ({
  // No autosave: nothing of this run is written outside its temporary directory.
  admin: { listen: `127.0.0.1:${ADMIN}`, config: { persist: false } },
  storage: { module: 'file_system', root: storage },
  apps: {
    http: {
      http_port: 18080,
      https_port: HTTPS,
      servers: { xamal: { listen: [`:${HTTPS}`], routes: apps.map((a) => ({ '@id': `xamal-${a}`, match: [{ host: [`${a}.lab.test`] }], handle: [{ handler: 'static_response', body: a }], terminal: true })) } },
    },
    tls: {
      ...(values.automate ? { certificates: { automate: apps.map((a) => `${a}.lab.test`) } } : {}),
      automation: { policies: apps.map((a) => ({ '@id': `xamal-${a}-tls`, subjects: [`${a}.lab.test`], issuers: [{ module: 'internal' }] })) },
    },
    pki: { certificate_authorities: { local: { install_trust: false } } },
  },
});

const load = (body: unknown) =>
  new Promise<number>((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port: ADMIN, method: 'POST', path: '/load', agent: false, headers: { 'content-type': 'application/json', host: `127.0.0.1:${ADMIN}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end(JSON.stringify(body));
  });

/** One fresh TLS handshake to b.lab.test: 'ok' or the error. */
const handshake = () =>
  new Promise<string>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: HTTPS, servername: 'b.lab.test', rejectUnauthorized: false });
    s.setTimeout(5_000, () => (s.destroy(), resolve('timeout')));
    s.on('secureConnect', () => (s.end(), resolve('ok')));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR' ? 'tls alert internal error' : (e.code ?? e.message)));
  });

async function run(reloads: number): Promise<Record<string, number>> {
  const dir = await mkdtemp(join(tmpdir(), 'xamal-caddy-reloads-'));
  // Started on its admin address (no autosave, storage in the run's directory), then configured by POST /load.
  const boot = join(dir, 'boot.json');
  await writeFile(boot, JSON.stringify({ admin: config(join(dir, 'data'), []).admin, storage: { module: 'file_system', root: join(dir, 'data') } }));
  const caddy = spawn('caddy', ['run', '--config', boot], { cwd: dir, stdio: 'ignore' });
  try {
    let up = 0;
    for (let i = 0; i < 50 && up !== 200; i++) up = await sleep(100).then(() => load(config(join(dir, 'data'), ['a', 'b']))).catch(() => 0);
    if (up !== 200) throw new Error('caddy did not take its config on 127.0.0.1:12019');
    for (let i = 0; i < 50 && (await handshake()) !== 'ok'; i++) await sleep(200); // b's certificate issued
    const counts: Record<string, number> = {};
    const until = Date.now() + RUN_LIMIT_MS;
    let stop = false;
    const loops = Array.from({ length: 8 }, async () => {
      while (!stop && Date.now() < until) {
        const r = await handshake();
        counts[r] = (counts[r] ?? 0) + 1;
      }
    });
    for (let i = 0; i < reloads && Date.now() < until; i++) {
      const status = await load(config(join(dir, 'data'), i % 2 === 0 ? ['b'] : ['a', 'b']));
      if (status !== 200) throw new Error(`POST /load answered ${status}`);
      await sleep(100);
    }
    stop = true;
    await Promise.all(loops);
    return counts;
  } finally {
    if (caddy.exitCode === null && caddy.signalCode === null) {
      const exited = new Promise((r) => caddy.once('exit', r));
      caddy.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

await ensurePackages(['caddy'], (l) => console.error(l));
for (let i = 1; i <= Number(values.runs); i++) {
  const counts = await run(Number(values.reloads));
  const { ok = 0, ...failed } = counts;
  console.log(`run ${i}${values.automate ? ' (automate)' : ''}: ${values.reloads} reloads, ${ok} handshakes ok, failed ${JSON.stringify(failed)}`);
}
