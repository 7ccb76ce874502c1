/**
 * Issue 23: what signing and verifying add per artifact. Sign = the provenance statement built and
 * checked against its schema, signed as a DSSE envelope, the manifest assembled with its sha256 and
 * signed (what a worker's publish step adds besides storing). Verify = both envelopes parsed and
 * checked against the farm's keys, the statement parsed, the subject and pinned sha256s compared
 * (what a client does with GET …/attestations). No engine, store or network: pure CPU.
 *
 *   npx tsx bench/signing.ts [--runs 7] [--artifacts 200]
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { builderId, provenanceStatement } from '../builder/provenance.ts';
import { assembleManifest, DEFAULT_LIMITS, planBuild } from '../builder/plan.ts';
import { BuildJobSchema } from '../core/contracts/build-job.ts';
import { IN_TOTO_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE, ProvenanceStatementSchema } from '../core/contracts/attestation.ts';
import { ManifestSchema } from '../core/contracts/manifest.ts';
import { newKeyPair, parsePrivateKey, signEnvelope, trustedKeys, verifyEnvelope } from '../core/signing.ts';
import { cells } from './farm.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' }, artifacts: { type: 'string', default: '200' } } });
const RUNS = Math.min(Math.max(Number(values.runs), 5), 50);
const ARTIFACTS = Math.min(Math.max(Number(values.artifacts), 1), 5_000);

const DIGEST = `sha256:${'d'.repeat(64)}`;
const key = newKeyPair();
const privateKey = parsePrivateKey(key.privatePem);
const trusted = trustedKeys([key.publicKey, newKeyPair().publicKey], 'bench');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const TIMINGS = { source: 120, deps: 3400, compile: 9100, smoke: 800, tar: 300, scan: 40, upload: 90 };

/** One artifact's plan, as a worker has it at publish (a git source, env, packages). */
function plan(i: number) {
  const commit = sha256(`commit ${i}`).slice(0, 40);
  const job = BuildJobSchema.parse({ app: 'hello', source: { kind: 'git', url: 'https://git.example/acme/hello.git', commit }, target: 'linux-x86_64-gnu2.36-debian12-otp27.3.4-elixir1.18.3', env: { FEATURE: 'on' }, packages: ['libvips-dev'] });
  return planBuild({ job, jobId: `b${sha256(`job ${i}`).slice(0, 32)}`, image: { ref: 'xamal/builder:bookworm', pinned: `xamal/builder@${DIGEST}`, digest: DIGEST }, source: { lockHash: 'l', configHash: 'c', mixExs: 'm', hasDeps: false, linkedDirs: [] }, workDir: '/w', cacheDir: '/c', limits: DEFAULT_LIMITS, depsNetwork: 'egress', cache: { deps: false, build: false } });
}

/** What publish adds: the signed provenance, the manifest pinning it, the manifest's signature. */
function sign(p: ReturnType<typeof plan>, i: number) {
  const tarball = { sha256: sha256(`tarball ${i}`), size: 12_345_678 };
  const statement = provenanceStatement({ plan: p, tarball, source: { tree: 'e'.repeat(40), lockSha256: 'f'.repeat(64) }, secretNames: [], timings: TIMINGS, log: { key: p.artifact.logKey, sha256: 'b'.repeat(64) }, startedOn: new Date().toISOString(), finishedOn: new Date().toISOString(), builder: { builderId: builderId(key.keyid, 'bench'), xamalVersion: '0.1.0' } });
  const provenance = JSON.stringify(signEnvelope(privateKey, IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement))));
  const manifest = JSON.stringify(assembleManifest(p, { releaseVersion: '0.1.0', scan: { glibcNeeded: '2.34', sonames: ['libc.so.6'] }, tarball, timings: TIMINGS, builtAt: new Date().toISOString(), attestations: { provenance: { key: p.artifact.provenanceKey, sha256: sha256(provenance) } } }), null, 2);
  const signature = JSON.stringify(signEnvelope(privateKey, MANIFEST_PAYLOAD_TYPE, Buffer.from(manifest)));
  return { manifest, signature, provenance };
}

/** What a client checks: the manifest's signature, the provenance's signature and pin, the subject. */
function verify(a: ReturnType<typeof sign>): void {
  const sig = verifyEnvelope(JSON.parse(a.signature), MANIFEST_PAYLOAD_TYPE, trusted);
  if (!sig.ok || sig.payload.toString('utf8') !== a.manifest) throw new Error('manifest signature does not verify');
  const manifest = ManifestSchema.parse(JSON.parse(a.manifest));
  if (manifest.attestations?.provenance?.sha256 !== sha256(a.provenance)) throw new Error('provenance pin differs');
  const prov = verifyEnvelope(JSON.parse(a.provenance), IN_TOTO_PAYLOAD_TYPE, trusted);
  if (!prov.ok) throw new Error('provenance signature does not verify');
  const statement = ProvenanceStatementSchema.parse(JSON.parse(prov.payload.toString('utf8')));
  if (statement.subject[0]?.digest.sha256 !== manifest.tarball.sha256) throw new Error('subject differs');
}

const signMs: number[] = [];
const verifyMs: number[] = [];
// Warm-up (JIT, zod's first parse), not counted.
for (let i = 0; i < 20; i++) verify(sign(plan(-1 - i), -1 - i));
for (let run = 0; run < RUNS; run++) {
  const made: ReturnType<typeof sign>[] = [];
  // The plans exist before publish (not part of what signing adds).
  const plans = Array.from({ length: ARTIFACTS }, (_, i) => plan(run * ARTIFACTS + i));
  let t0 = performance.now();
  for (let i = 0; i < ARTIFACTS; i++) made.push(sign(plans[i]!, run * ARTIFACTS + i));
  signMs.push((performance.now() - t0) / ARTIFACTS);
  t0 = performance.now();
  for (const a of made) verify(a);
  verifyMs.push((performance.now() - t0) / ARTIFACTS);
}
const ms = (x: number) => `${x.toFixed(2)} ms`;
console.log(`signing per artifact, ${RUNS} runs of ${ARTIFACTS} artifacts (${new Date().toISOString().slice(0, 10)}, node ${process.version})`);
console.log('| per artifact | median | min–max |');
console.log('|---|---|---|');
console.log(`| sign (provenance + manifest) | ${cells(signMs, ms)} |`);
console.log(`| verify (signature, provenance, pins) | ${cells(verifyMs, ms)} |`);
console.log(`| both | ${cells(signMs.map((s, i) => s + verifyMs[i]!), ms)} |`);
