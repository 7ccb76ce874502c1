import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deployVerb, farmArtifacts, type DeployValues } from '../../../../cli/commands/deploy.ts';
import { dryRunLines, type Remote } from '../../../../cli/remote.ts';
import { exitCodeFor, LocalExecutor, XamalError } from '../../../../core/index.ts';
import { newKeyPair } from '../../../../core/signing.ts';
import type { FarmClient } from '../../../../deployer/farm-client.ts';
import { deployFlow } from '../../../../deployer/flows/deploy.ts';
import type { RecordedStep } from '../../../../deployer/remote.ts';
import type { AttestationTexts } from '../../../../deployer/verify.ts';
import { resign, signedArtifact, TEST_COMMIT, TEST_TUPLE, type KeyPair, type SignedArtifact } from '../../../../testkit/attestations.ts';
import { baseConfig, testContext } from '../../../../testkit/deployer/context.ts';

/**
 * `xamal deploy` verifying what the farm resolved (its client faked: the attestations as the farm
 * stores them, signed with core/signing.ts), under deploy.yml's keys or, with none pinned, the
 * farm's own: refused before any host changes, or pulled with the signed manifest's sha256.
 */

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const PROBE = '@@uname\nLinux\nx86_64\n6.1\nweb1\n@@glibc\nglibc 2.36\n@@os-release\nID=debian\nVERSION_ID="12"\n@@ldconfig\n\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n@@libs\n@@end\n';

/** Hosts without the release, where everything else succeeds. */
function respond(step: RecordedStep) {
  if (step.kind !== 'run') return undefined;
  const label = step.command.label ?? '';
  if (label.startsWith('is ')) return { code: 1 };
  if (label === 'fingerprint host') return { stdout: PROBE };
  if (label.startsWith('slot state')) return { stdout: 'blue active /opt/xamal/shop/releases/old\ngreen inactive -\ncurrent /opt/xamal/shop/releases/old\nlive blue\n' };
  if (label.startsWith('health check') || label.startsWith('check https')) return { stdout: '200' };
  return { code: 0 };
}

/** A farm whose answers for the artifact are `texts` (the tarball's sha256 in its index: `indexSha`), serving `keys`. */
function fakeFarm(texts: AttestationTexts, indexSha: string, keys: KeyPair[] = []) {
  const calls = { keys: 0, attestations: 0 };
  const client = {
    resolve: async () => ({ artifact: { tuple: TEST_TUPLE, sha256: indexSha } }),
    downloadLink: async () => ({ url: 'http://farm.test/v1/downloads/LINK', sha256: indexSha, expires: '2030-01-01T00:00:00Z' }),
    attestations: async () => (calls.attestations++, { manifestKey: 'artifacts/shop/x/manifest.json', ...texts }),
    keys: async () => (calls.keys++, keys.map((k, i) => ({ keyid: k.keyid, publicKey: k.publicKey, current: i === 0 }))),
  } as unknown as FarmClient;
  return { client, calls };
}

async function deployWith(farm: ReturnType<typeof fakeFarm>, pins: { public_key?: string; public_keys?: string[] } = {}, hosts = ['web1', 'web2']) {
  const said: string[] = [];
  const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], hosts, respond, env: { XAMAL_FARM_TOKEN: 't' }, config: { ...baseConfig, farm: { url: 'http://farm.test', ...pins } } });
  ctx.say = (l) => said.push(l);
  const artifacts = farmArtifacts(ctx, TEST_COMMIT, new LocalExecutor({}), { client: farm.client })!;
  const result = await deployFlow(ctx, { version: TEST_COMMIT, artifacts }).then((r) => r, (e: unknown) => e as XamalError);
  const runs = pool.steps.filter((s): s is Extract<RecordedStep, { kind: 'run' }> => s.kind === 'run');
  return { result, said, pulls: runs.filter((s) => (s.command.label ?? '').startsWith('pull release')), changed: runs.map((s) => s.command.label ?? '').filter((l) => !l.startsWith('is ') && l !== 'fingerprint host') };
}

const genuine = (key?: KeyPair) => signedArtifact(key ? { key } : {});
const served = (a: SignedArtifact, keys: KeyPair[] = []) => fakeFarm(a.texts, sha256(a.tarball), keys);

describe('deploy verifies every artifact before any host pulls it', () => {
  it('against the pinned key: pulled with the sha256 of the signed manifest, said once per artifact, the farm not asked for keys', async () => {
    const a = genuine();
    const farm = served(a);
    const { result, said, pulls } = await deployWith(farm, { public_key: a.key.publicKey });
    expect('outcomes' in result && result.outcomes.every((o) => o.ok)).toBe(true);
    expect(pulls).toHaveLength(2);
    for (const p of pulls) expect(p.command.argv).toContain(sha256(a.tarball));
    expect(said).toEqual([`verified ${TEST_TUPLE}: signed by key ${a.key.keyid} (deploy.yml farm.public_key), built from commit ${TEST_COMMIT}`]);
    expect(farm.calls).toEqual({ keys: 0, attestations: 1 });
  });

  it('refuses a manifest edited in the store (one byte), naming the artifact and the reason; nothing changes on any host', async () => {
    const a = genuine();
    const edited = a.texts.manifest.replace('"releaseVersion": "0.1.0"', '"releaseVersion": "0.1.1"');
    const { result, changed } = await deployWith(fakeFarm({ ...a.texts, manifest: edited }, sha256(a.tarball)), { public_key: a.key.publicKey });
    expect(result).toMatchObject({ code: 'verification_failed', message: expect.stringContaining(`nothing was changed on any host:\nartifact ${TEST_TUPLE}: signed manifest: manifest.json differs from what was signed`) });
    expect(exitCodeFor((result as XamalError).code)).toBe(12);
    expect(changed).toEqual([]);
  });

  it('refuses a tarball swapped together with a re-hashed manifest signed by another key', async () => {
    const a = genuine();
    const evil = 'f'.repeat(64);
    const manifest = JSON.stringify({ ...a.manifest, tarball: { ...a.manifest.tarball, sha256: evil } }, null, 2);
    const mallory = newKeyPair();
    const { result, changed } = await deployWith(fakeFarm({ ...a.texts, manifest, signature: resign(manifest, mallory) }, evil), { public_key: a.key.publicKey });
    expect((result as XamalError).message).toContain(`artifact ${TEST_TUPLE}: signature: unknown key: signed by key ${mallory.keyid}, which is not trusted`);
    expect(changed).toEqual([]);
  });

  it('refuses an artifact signed by a rotated-out key unless deploy.yml still lists it', async () => {
    const old = newKeyPair();
    const current = newKeyPair();
    const a = genuine(old);
    const refused = await deployWith(served(a), { public_key: current.publicKey });
    expect(refused.result).toMatchObject({ code: 'verification_failed', message: expect.stringContaining('signature: unknown key') });
    expect(refused.changed).toEqual([]);
    const listed = await deployWith(served(a), { public_key: current.publicKey, public_keys: [old.publicKey] });
    expect('outcomes' in listed.result && listed.result.outcomes.every((o) => o.ok)).toBe(true);
  });

  it('refuses provenance whose commit is not the version being deployed', async () => {
    const a = signedArtifact({ provenanceCommit: 'bad0000000000000000000000000000000000bad' });
    const { result, changed } = await deployWith(served(a), { public_key: a.key.publicKey });
    expect((result as XamalError).message).toContain(`artifact ${TEST_TUPLE}: provenance commit: the provenance says commit bad0000000000000000000000000000000000bad, not ${TEST_COMMIT}`);
    expect(changed).toEqual([]);
  });

  it('an unsigned artifact: refused when a key is pinned; with none pinned, deployed with a warning', async () => {
    const a = genuine();
    const unsigned = { ...a.texts, signature: null };
    const pinned = await deployWith(fakeFarm(unsigned, sha256(a.tarball)), { public_key: a.key.publicKey });
    expect((pinned.result as XamalError).message).toContain(`artifact ${TEST_TUPLE}: signature: missing: no manifest.dsse.json`);
    expect(pinned.changed).toEqual([]);
    const open = await deployWith(fakeFarm(unsigned, sha256(a.tarball), [a.key]));
    expect('outcomes' in open.result && open.result.outcomes.every((o) => o.ok)).toBe(true);
    expect(open.said.filter((l) => l.includes(`artifact ${TEST_TUPLE} is unsigned`))).toHaveLength(1);
    expect(open.pulls).toHaveLength(2);
  });

  it("with no key pinned: checked against the farm's keys, warned once with the deploy.yml line to pin", async () => {
    const a = genuine();
    const farm = served(a, [a.key]);
    const { result, said } = await deployWith(farm);
    expect('outcomes' in result && result.outcomes.every((o) => o.ok)).toBe(true);
    expect(said.filter((l) => l.startsWith('warning:'))).toEqual([`warning: deploy.yml pins no farm key, so artifacts are checked against the keys the farm itself serves (GET /v1/keys); pin the farm's key in config/deploy.yml:\nfarm:\n  public_key: ${a.key.publicKey}`]);
    expect(farm.calls.keys).toBe(1);
  });

  it("with no key pinned, an artifact signed by a key the farm does not serve is still refused", async () => {
    const a = genuine();
    const { result, changed } = await deployWith(served(a, [newKeyPair()]));
    expect(result).toMatchObject({ code: 'verification_failed', message: expect.stringContaining("signature: unknown key") });
    expect((result as XamalError).message).toContain("from the farm's GET /v1/keys");
    expect(changed).toEqual([]);
  });
});

describe('deploy against a farm from before signing (no GET /v1/keys, no GET …/attestations)', () => {
  const notFound = () => {
    throw new XamalError('not_found', 'farm: Route GET not found');
  };

  it('with no key pinned: deployed with the farm\'s sha256, warning that nothing could be verified', async () => {
    const a = genuine();
    const farm = served(a);
    Object.assign(farm.client, { keys: async () => notFound(), attestations: async () => notFound() });
    const { result, said, pulls } = await deployWith(farm);
    expect('outcomes' in result && result.outcomes.every((o) => o.ok)).toBe(true);
    expect(said).toEqual([
      "warning: deploy.yml pins no farm key and the farm serves none (GET /v1/keys): artifacts cannot be verified; pin the farm's key (xamal farm keys new prints it) as farm.public_key",
      `warning: artifact ${TEST_TUPLE} is not verified: missing: the farm serves no attestations for it (GET …/attestations answered 404)`,
    ]);
    for (const p of pulls) expect(p.command.argv).toContain(sha256(a.tarball));
  });

  it('with a key pinned: refused before any host changes', async () => {
    const a = genuine();
    const farm = served(a);
    Object.assign(farm.client, { attestations: async () => notFound() });
    const { result, changed } = await deployWith(farm, { public_key: a.key.publicKey });
    expect(result).toMatchObject({ code: 'verification_failed', message: expect.stringContaining(`artifact ${TEST_TUPLE}: signature: missing: the farm serves no attestations for it`) });
    expect(changed).toEqual([]);
  });
});

describe('deploy --dry-run', () => {
  it('records the verification as a step before any host step, naming the pinned key', async () => {
    const k = newKeyPair();
    const { ctx, pool } = testContext({ command: 'deploy', roles: ['web'], respond: (s) => (s.kind === 'run' && (s.command.label ?? '').startsWith('health') ? { stdout: '200' } : undefined), config: { ...baseConfig, farm: { url: 'http://farm.test', public_key: k.publicKey } } });
    const remote: Remote = { ctx, recording: pool, close: async () => {} };
    await deployVerb('deploy', [], { version: TEST_COMMIT } as DeployValues, remote, () => {}).catch(() => undefined);
    const lines = dryRunLines(pool.steps);
    expect(lines[0]).toBe(`local: verify each artifact before any host pulls it: manifest signature, provenance (signed, about the tarball, from commit ${TEST_COMMIT}) and SBOM sha256, against deploy.yml's farm key ${k.keyid}`);
    expect(lines.slice(1).every((l) => !l.startsWith('local:'))).toBe(true);
  });
});
