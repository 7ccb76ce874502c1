/**
 * Issue 23 — what verifying an artifact adds to a deploy (goal: signing and verifying under 50 ms per
 * artifact). One run: the trusted key parsed and a signed artifact verified (deployer/verify.ts:
 * manifest signature, payload comparison, provenance sha256, signature, statement schema, subject,
 * commit, SBOM sha256) `--per-run` times, over the exact texts the farm serves; an SBOM of
 * `--components` components (a Phoenix app's mix.lock is ~60, its release's applications ~90). No
 * network: the fetch is one GET beside the resolve the deploy already makes.
 *
 *   npx tsx bench/verify.ts [--runs 5] [--per-run 200] [--components 150]
 *
 * Prints the median of the runs' per-artifact mean, with min–max, in ms.
 */
import { parseArgs } from 'node:util';
import { newKeyPair, trustedKeys } from '../core/signing.ts';
import { verifyArtifact } from '../deployer/verify.ts';
import { signedArtifact } from '../testkit/attestations.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, 'per-run': { type: 'string', default: '200' }, components: { type: 'string', default: '150' } } });
const runs = Number(values.runs);
const perRun = Number(values['per-run']);
const key = newKeyPair();
const sbom = JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, components: Array.from({ length: Number(values.components) }, (_, i) => ({ type: 'library', name: `dep_${i}`, version: '1.2.3', purl: `pkg:hex/dep_${i}@1.2.3`, hashes: [{ alg: 'SHA-256', content: 'a'.repeat(64) }] })) });
const { texts, manifest } = signedArtifact({ key, sbom });
const claim = { app: 'shop', version: manifest.version, tuple: manifest.tuple };

const perArtifactMs: number[] = [];
for (let r = 0; r < runs; r++) {
  const t0 = performance.now();
  for (let i = 0; i < perRun; i++) {
    const v = verifyArtifact({ texts, trusted: trustedKeys([key.publicKey], 'bench'), keysFrom: 'bench', artifact: claim });
    if (!v.ok) throw new Error(`verification failed: ${JSON.stringify(v.checks.filter((c) => !c.ok))}`);
  }
  perArtifactMs.push((performance.now() - t0) / perRun);
}
const sorted = [...perArtifactMs].sort((x, y) => x - y);
const fmt = (ms: number) => ms.toFixed(3);
console.log(`| verify one artifact (SBOM of ${values.components} components, ${sbom.length} bytes; provenance ${texts.provenance!.length} bytes) | ${fmt(sorted[Math.floor(sorted.length / 2)]!)} ms | ${fmt(sorted[0]!)}–${fmt(sorted.at(-1)!)} ms | ${runs} × ${perRun} |`);
