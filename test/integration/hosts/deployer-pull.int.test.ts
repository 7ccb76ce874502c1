import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactKey, artifactManifestKey, parseProbeOutput, parseTargetOrThrow } from '../../../core/index.ts';
import type { Manifest } from '../../../core/contracts/manifest.ts';
import { localStore } from '../../../store/local.ts';
import { appLayout } from '../../../deployer/commands/layout.ts';
import { probeCommand, pullFailure, pullReleaseCommand, unpackUploadedCommand, uploadPath } from '../../../deployer/commands/release.ts';
import { farmClient } from '../../../deployer/farm-client.ts';
import type { HostSession, SessionPool } from '../../../deployer/remote.ts';
import { sshPool } from '../../../deployer/ssh.ts';
import { labDeps, labFarmApi, upLab, type Lab } from '../../../testkit/hosts/index.ts';

const TOKEN = 'p'.repeat(32);
const COMMIT = 'c0ffee'.padEnd(40, '0');

describe('a host pulls its release itself from a short-lived farm link, verified before unpacking', () => {
  let lab: Lab;
  let tmp: string;
  let api: FastifyInstance;
  let pool: SessionPool;
  let farm: ReturnType<typeof farmClient>;
  let tuple: string;
  let sha256: string;
  let store: ReturnType<typeof localStore>;
  const layout = appLayout('pullapp', undefined);

  const session = (i: number): Promise<HostSession> => pool.session(lab.hosts[i]!.address);

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-pull-'));
    lab = await upLab(labDeps(), { suites: ['bookworm', 'trixie'] });
    pool = sshPool({ user: 'deploy', port: 22, keys: [lab.privateKeyPath], keyData: [], connectTimeoutMs: 3_000, knownHostsPath: lab.knownHostsPath, hostKeys: {}, trustNewHosts: false });
    // A small "release": a tarball with bin/hello, stored with its manifest like the builder does.
    const rel = join(tmp, 'rel');
    await mkdir(join(rel, 'bin'), { recursive: true });
    await writeFile(join(rel, 'bin', 'hello'), '#!/bin/sh\necho hello from the release\n', { mode: 0o755 });
    execFileSync('tar', ['-czf', join(tmp, 'rel.tar.gz'), '-C', rel, '.']);
    const body = await readFile(join(tmp, 'rel.tar.gz'));
    sha256 = createHash('sha256').update(body).digest('hex');
    tuple = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
    const ref = { app: 'pullapp', version: COMMIT, target: parseTargetOrThrow(tuple) };
    store = localStore(join(tmp, 'store'));
    const manifest: Manifest = {
      schema: 1, app: 'pullapp', release: 'pullapp', releaseVersion: '0.1.0', version: COMMIT, commit: COMMIT, tuple, mixEnv: 'prod',
      tarball: { key: artifactKey(ref), sha256, size: body.length },
      image: { ref: 'r:t', digest: `sha256:${'b'.repeat(64)}` }, cacheKeys: { deps: 'd', build: 'b' }, glibcNeeded: '2.34',
      sonames: ['libc.so.6'], timings: {}, logKey: 'logs/x.log', builtAt: new Date().toISOString(), jobId: 'bx',
    };
    await store.put(artifactKey(ref), body);
    await store.put(artifactManifestKey(ref), JSON.stringify(manifest));
    // The farm API listens on the lab bridge: hosts reach it there, as servers reach a real farm.
    let url: string;
    ({ api, url } = await labFarmApi(lab, store, TOKEN, 60));
    farm = farmClient(url, TOKEN);
    for (const i of [0, 1]) await (await session(i)).run({ argv: ['sudo', '-n', 'sh', '-c', `mkdir -p ${layout.releases} ${layout.tmp} && chown -R deploy: ${layout.root}`] });
  }, 300_000);

  afterAll(async () => {
    await pool?.close();
    await api?.close();
    await lab?.down();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('fingerprints the host over SSH and the farm resolves the artifact built for it (or says why not)', async () => {
    const fp = parseProbeOutput((await (await session(0)).run(probeCommand())).stdout);
    expect(fp).toMatchObject({ arch: 'x86_64', libc: 'gnu', distro: 'debian', distroVersion: '12' });
    expect(fp.libraries).toContain('libc.so.6');
    expect((await farm.resolve({ app: 'pullapp', version: COMMIT, host: fp })).artifact).toMatchObject({ tuple, sha256 });
    const old = { ...fp, libcVersion: '2.31' };
    await expect(farm.resolve({ app: 'pullapp', version: COMMIT, host: old })).rejects.toThrow(/no artifact .* runs on this host[\s\S]*2\.34/);
  });

  it('pulls, verifies and unpacks the release on the host; a second pull finds it present; the link never shows in ps', async () => {
    const s = await session(0);
    const link = await farm.downloadLink('pullapp', COMMIT, tuple);
    expect(new URL(link.url).hostname).toBe(lab.gateway);
    const req = { layout, version: COMMIT, sha256: link.sha256 };
    const r = await s.run(pullReleaseCommand(req, link.url));
    expect(r.stdout.trim(), r.stderr).toBe('pulled');
    expect((await s.run({ argv: [`${layout.releases}/${COMMIT}/bin/hello`] })).stdout.trim()).toBe('hello from the release');
    expect((await s.run(pullReleaseCommand(req, link.url))).stdout.trim()).toBe('present');
    expect((await s.run({ argv: ['sh', '-c', `ls -A ${layout.tmp}`] })).stdout.trim()).toBe('');
  });

  it('refuses a tampered artifact (a byte flipped in the store): sha256 mismatch, nothing unpacked', async () => {
    const s = await session(1);
    const link = await farm.downloadLink('pullapp', COMMIT, tuple);
    const key = artifactKey({ app: 'pullapp', version: COMMIT, target: parseTargetOrThrow(tuple) });
    const original = (await store.get(key))!;
    const flipped = Buffer.from(original);
    flipped[flipped.length >> 1]! ^= 0xff;
    await store.put(key, flipped);
    try {
      const r = await s.run(pullReleaseCommand({ layout, version: COMMIT, sha256: link.sha256 }, link.url));
      expect(r.code).toBe(22);
      const err = pullFailure(lab.hosts[1]!.address, COMMIT, r);
      expect(err.message).toMatch(/refused to unpack: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}; the previous release is untouched/);
      expect((await s.run({ argv: ['test', '-e', `${layout.releases}/${COMMIT}`] })).code).toBe(1);
      expect((await s.run({ argv: ['sh', '-c', `ls -A ${layout.releases} ${layout.tmp}`] })).stdout.replace(/\S+:\n?/g, '').trim()).toBe('');
    } finally {
      await store.put(key, original);
    }
  });

  it('reports a full disk during the pull clearly and leaves the previous release untouched', async () => {
    const s = await session(1);
    // The previous release, then a 1 MB filesystem for downloads.
    await s.upload(join(tmp, 'rel.tar.gz'), uploadPath({ layout, version: 'previous', sha256 }));
    expect((await s.run(unpackUploadedCommand({ layout, version: 'previous', sha256 }))).stdout.trim()).toBe('pulled');
    await s.run({ argv: ['sudo', '-n', 'sh', '-c', `mount -t tmpfs -o size=1k,mode=1777 xamal-full ${layout.tmp}`] });
    try {
      // 64 KB of incompressible data (bigger than the filesystem), as the artifact.
      const big = join(tmp, 'big');
      await mkdir(big, { recursive: true });
      await writeFile(join(big, 'blob'), (await import('node:crypto')).randomBytes(64 << 10));
      execFileSync('tar', ['-czf', join(tmp, 'big.tar.gz'), '-C', big, '.']);
      const body = await readFile(join(tmp, 'big.tar.gz'));
      const bigTuple = 'linux-x86_64-gnu2.41-debian13-otp27.3.4.1-elixir1.18.3';
      const ref = { app: 'pullapp', version: COMMIT, target: parseTargetOrThrow(bigTuple) };
      const m = JSON.parse((await store.get(artifactManifestKey({ ...ref, target: parseTargetOrThrow(tuple) })))!.toString()) as Manifest;
      await store.put(artifactKey(ref), body);
      await store.put(artifactManifestKey(ref), JSON.stringify({ ...m, tuple: bigTuple, tarball: { key: artifactKey(ref), sha256: createHash('sha256').update(body).digest('hex'), size: body.length } }));
      const link = await farm.downloadLink('pullapp', COMMIT, bigTuple);
      const r = await s.run(pullReleaseCommand({ layout, version: 'next', sha256: link.sha256 }, link.url));
      expect(r.code).toBe(21);
      expect(pullFailure(lab.hosts[1]!.address, 'next', r).message).toMatch(/download failed \(.*\) — is the disk full\?; the previous release is untouched/);
      expect((await s.run({ argv: [`${layout.releases}/previous/bin/hello`] })).stdout.trim()).toBe('hello from the release');
      expect((await s.run({ argv: ['test', '-e', `${layout.releases}/next`] })).code).toBe(1);
    } finally {
      await s.run({ argv: ['sudo', '-n', 'umount', layout.tmp] });
    }
  });
});
