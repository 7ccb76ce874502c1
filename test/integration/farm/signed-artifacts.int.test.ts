import { createHash, createPublicKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactAttestationsSchema } from '../../../api/schemas/artifacts.ts';
import { FarmPublicKeysSchema, IN_TOTO_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE, ProvenanceStatementSchema, XAMAL_BUILD_TYPE } from '../../../core/contracts/attestation.ts';
import { ManifestSchema } from '../../../core/contracts/manifest.ts';
import { newKeyPair, trustedKeys, verifyEnvelope } from '../../../core/signing.ts';
import { servicesConfig } from '../../../localservices/index.ts';
import { helloRepo } from '../../../testkit/example-repo.ts';
import { startTestFarm, type TestFarm } from '../../../testkit/farm.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';
import { testSigningKey } from '../../../testkit/signing.ts';

/**
 * Issue 23, the farm's side: a real farm (API, BullMQ worker, S3 stand-in) builds examples/hello
 * once and signs it; its public keys (the current one and a rotated-out one) are served without a
 * token, and the artifact's manifest signature and provenance verify against them.
 */

const TOKEN = 's'.repeat(40);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('a signed artifact, checked through the API as a client checks it', () => {
  let farm: TestFarm;
  let tmp: string;
  const retired = newKeyPair();

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-signed-'));
    farm = await startTestFarm({ services: services(), prefix: testPrefix('signed'), host: '127.0.0.1', token: TOKEN, workDir: tmp, cacheDir: join(servicesConfig().cacheDir, 'test-builds'), retiredKeys: [retired.publicKey] });
  }, 300_000);

  afterAll(async () => {
    await farm?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('builds hello; /v1/keys lists the worker\'s key as current and the retired one; both envelopes verify; the statement\'s subject is the tarball and the manifest pins the provenance\'s bytes', { timeout: 900_000 }, async () => {
    const repo = await helloRepo(join(tmp, 'repo'));
    const { tuple, sha256: tarballSha } = await farm.build('hello', repo, 'bookworm');

    const keysRes = await fetch(`${farm.url}/v1/keys`);
    expect(keysRes.status).toBe(200);
    const { keys } = FarmPublicKeysSchema.parse(await keysRes.json());
    const key = testSigningKey();
    expect(keys).toEqual([
      { keyid: key.keyid, publicKey: key.publicKey, current: true },
      { keyid: retired.keyid, publicKey: retired.publicKey, current: false },
    ]);

    const res = await fetch(`${farm.url}/v1/artifacts/hello/${repo.commit}/${tuple}/attestations`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    const a = ArtifactAttestationsSchema.parse(await res.json());
    const manifest = ManifestSchema.parse(JSON.parse(a.manifest));
    expect(manifest.tarball.sha256).toBe(tarballSha);

    const trusted = trustedKeys(keys.map((k) => k.publicKey), 'GET /v1/keys');
    const sig = verifyEnvelope(JSON.parse(a.signature!), MANIFEST_PAYLOAD_TYPE, trusted);
    expect(sig.ok && sig.keyid).toBe(key.keyid);
    expect(sig.ok && sig.payload.toString('utf8')).toBe(a.manifest);

    expect(manifest.attestations?.provenance).toEqual({ key: a.manifestKey.replace(/manifest\.json$/, 'provenance.dsse.json'), sha256: sha256(a.provenance!) });
    const prov = verifyEnvelope(JSON.parse(a.provenance!), IN_TOTO_PAYLOAD_TYPE, trusted);
    expect(prov.ok).toBe(true);
    const statement = ProvenanceStatementSchema.parse(JSON.parse(prov.ok ? prov.payload.toString('utf8') : '{}'));
    expect(statement.subject).toEqual([{ name: manifest.tarball.key.split('/').at(-1), digest: { sha256: manifest.tarball.sha256 } }]);
    const { buildDefinition, runDetails } = statement.predicate;
    expect(buildDefinition.buildType).toBe(XAMAL_BUILD_TYPE);
    expect(buildDefinition.externalParameters).toMatchObject({ source: { kind: 'git', url: repo.url, commit: repo.commit }, target: tuple, mixEnv: 'prod', release: 'hello' });
    expect(buildDefinition.resolvedDependencies).toContainEqual({ name: 'source', uri: `git+${repo.url}`, digest: { gitCommit: repo.commit, gitTree: expect.stringMatching(/^[0-9a-f]{40}$/) } });
    expect(buildDefinition.resolvedDependencies).toContainEqual({ name: 'builder-image', uri: manifest.image.ref, digest: { sha256: manifest.image.digest.slice('sha256:'.length) } });
    expect(runDetails.metadata?.invocationId).toBe(manifest.jobId);
    expect(runDetails.builder.id).toContain(`/farm/${key.keyid}/worker/`);

    // The raw documents are the same bytes; a key the farm does not publish does not verify them.
    const raw = await fetch(`${farm.url}/v1/artifacts/hello/${repo.commit}/${tuple}/provenance`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await raw.text()).toBe(a.provenance);
    const other = verifyEnvelope(JSON.parse(a.signature!), MANIFEST_PAYLOAD_TYPE, new Map([[key.keyid, createPublicKey(newKeyPair().privatePem)]]));
    expect(other.ok).toBe(false);
  });
});
