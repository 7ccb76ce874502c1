import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { publishedKeys } from '../../../api/routes/keys.ts';
import { ArtifactAttestationsSchema } from '../../../api/schemas/artifacts.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { FarmPublicKeysSchema } from '../../../core/contracts/attestation.ts';
import { artifactFilesBeside, artifactManifestKey, parseTargetOrThrow } from '../../../core/index.ts';
import { newKeyPair } from '../../../core/signing.ts';
import { localStore } from '../../../store/local.ts';
import { putArtifact } from '../../../testkit/api/artifact.ts';

const TOKEN = 't'.repeat(32);
const AUTH = { authorization: `Bearer ${TOKEN}` };
const TUPLE = 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0';
const SIGNED = 'a'.repeat(40);
const OLD = 'b'.repeat(40);
const CURRENT = newKeyPair();
const RETIRED = newKeyPair();

describe('the farm\'s keys and each artifact\'s attestations', () => {
  let dir: string;
  let app: FastifyInstance;
  const files = artifactFilesBeside(artifactManifestKey({ app: 'hello', version: SIGNED, target: parseTargetOrThrow(TUPLE) }));
  // Exact text, spacing included: the route answers the bytes that were signed, never a re-serialisation.
  const SIGNATURE = '{"payloadType":"application/vnd.xamal.manifest+json",  "payload":"e30=","signatures":[]}';
  const PROVENANCE = '{ "payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": [] }\n';
  const SBOM = '{"bomFormat":"CycloneDX","specVersion":"1.6"}';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xamal-attest-'));
    const store = localStore(dir);
    await putArtifact(store, { app: 'hello', version: SIGNED, tuple: TUPLE, body: Buffer.from('signed') });
    await store.put(files.signature, SIGNATURE);
    await store.put(files.provenance, PROVENANCE);
    await store.put(files.sbom, SBOM);
    await putArtifact(store, { app: 'hello', version: OLD, tuple: TUPLE, body: Buffer.from('built before signing') });
    app = await buildApp({ token: TOKEN, signingKeys: { current: CURRENT.publicKey, retired: [RETIRED.publicKey, CURRENT.publicKey] }, services: { health: healthService({}), ...storeBackedServices(store) }, logLevel: 'silent' });
  });
  afterAll(async () => {
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('GET /v1/keys answers without a token: the current key first, then each retired one once (one equal to the current is the current)', async () => {
    const res = await app.inject({ url: '/v1/keys' });
    expect(res.statusCode).toBe(200);
    expect(FarmPublicKeysSchema.parse(res.json())).toEqual({
      keys: [
        { keyid: CURRENT.keyid, publicKey: CURRENT.publicKey, current: true },
        { keyid: RETIRED.keyid, publicKey: RETIRED.publicKey, current: false },
      ],
    });
  });

  it('a farm with no key configured lists none', () => {
    expect(publishedKeys(undefined, [])).toEqual({ keys: [] });
    expect(publishedKeys(undefined, [RETIRED.publicKey])).toEqual({ keys: [{ keyid: RETIRED.keyid, publicKey: RETIRED.publicKey, current: false }] });
  });

  it('…/attestations answers the stored manifest, signature, provenance and SBOM as their exact text (also by a commit prefix)', async () => {
    for (const version of [SIGNED, SIGNED.slice(0, 7)]) {
      const res = await app.inject({ url: `/v1/artifacts/hello/${version}/${TUPLE}/attestations`, headers: AUTH });
      expect(res.statusCode).toBe(200);
      const body = ArtifactAttestationsSchema.parse(res.json());
      expect(body.manifestKey).toBe(artifactManifestKey({ app: 'hello', version: SIGNED, target: parseTargetOrThrow(TUPLE) }));
      expect(JSON.parse(body.manifest)).toMatchObject({ version: SIGNED, tuple: TUPLE });
      expect(body).toMatchObject({ signature: SIGNATURE, provenance: PROVENANCE, sbom: SBOM });
    }
  });

  it('an artifact built before signing answers null for each missing file; an unknown one is 404', async () => {
    const res = await app.inject({ url: `/v1/artifacts/hello/${OLD}/${TUPLE}/attestations`, headers: AUTH });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ signature: null, provenance: null, sbom: null });
    const none = await app.inject({ url: `/v1/artifacts/hello/${'c'.repeat(40)}/${TUPLE}/attestations`, headers: AUTH });
    expect(none.statusCode).toBe(404);
    expect(none.json().message).toMatch(/no artifact for hello c{40}/);
  });

  it('…/provenance and …/sbom answer the stored documents as they are; an artifact without one is 404 naming what is missing', async () => {
    const prov = await app.inject({ url: `/v1/artifacts/hello/${SIGNED}/${TUPLE}/provenance`, headers: AUTH });
    expect(prov.statusCode).toBe(200);
    expect(prov.headers['content-type']).toMatch(/^application\/json/);
    expect(prov.body).toBe(PROVENANCE);
    const sbom = await app.inject({ url: `/v1/artifacts/hello/${SIGNED}/${TUPLE}/sbom`, headers: AUTH });
    expect(sbom.statusCode).toBe(200);
    expect(sbom.headers['content-type']).toMatch(/^application\/vnd\.cyclonedx\+json/);
    expect(sbom.body).toBe(SBOM);
    for (const which of ['provenance', 'sbom']) {
      const res = await app.inject({ url: `/v1/artifacts/hello/${OLD}/${TUPLE}/${which}`, headers: AUTH });
      expect(res.statusCode).toBe(404);
      expect(res.json().message).toMatch(new RegExp(`no ${which === 'sbom' ? 'SBOM' : 'provenance'} stored for hello ${OLD}`));
    }
  });
});
