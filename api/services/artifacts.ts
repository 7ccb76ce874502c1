import { artifactFilesBeside, artifactManifestKey, artifactVariant, formatTarget, XamalError, type Target } from '../../core/index.ts';
import { CommitSchema } from '../../core/contracts/build-job.ts';
import type { Manifest } from '../../core/contracts/manifest.ts';
import type { ArtifactIndex } from '../../store/artifact-index.ts';
import type { Readable } from 'node:stream';
import { signDownload, type DownloadSettings } from '../downloads.ts';
import type { ArtifactAttestations, DownloadLink } from '../schemas/artifacts.ts';
import type { ObjectStore } from '../../store/store.ts';

export interface ArtifactId {
  app: string;
  version: string;
  target: Target;
  /** Default prod and the app's name (core/store-keys.ts). */
  mixEnv?: string;
  release?: string;
}

/** `hello 1a2b3c4` and, for another MIX_ENV or release, which. */
function describe(id: ArtifactId): string {
  const v = artifactVariant(id);
  return `${id.app} ${id.version}${v.isDefault ? '' : ` (MIX_ENV=${v.mixEnv}, release ${v.release})`}`;
}

/** Reads artifacts from the store through the index. An artifact exists only once its manifest does. */
export function artifactService(store: ObjectStore, index: ArtifactIndex) {
  /** A full commit reads its key; a prefix, a mix.exs version or `latest` asks the index for that tuple's build. */
  const located = async (id: ArtifactId): Promise<{ key: string; manifest: Manifest }> => {
    const exact = CommitSchema.safeParse(id.version).success ? artifactManifestKey(id) : undefined;
    const found = exact
      ? await index.manifest(id.app, id.version, exact).then((m) => m && { key: exact, manifest: m })
      : (await index.find(id.app, id.version, { tuple: formatTarget(id.target), ...(id.mixEnv ? { mixEnv: id.mixEnv } : {}), ...(id.release ? { release: id.release } : {}) }))[0];
    if (!found) throw new XamalError('not_found', `no artifact for ${describe(id)} on that target`);
    return found;
  };
  const manifest = async (id: ArtifactId): Promise<Manifest> => (await located(id)).manifest;
  const text = async (key: string) => (await store.get(key))?.toString('utf8') ?? null;
  // Manifests never change under their key, and the index keeps one object per key: its JSON is kept with it.
  const serialised = new WeakMap<Manifest, string>();
  return {
    manifest,
    async manifestJson(id: ArtifactId): Promise<string> {
      const m = await manifest(id);
      let json = serialised.get(m);
      if (json === undefined) serialised.set(m, (json = JSON.stringify(m)));
      return json;
    },
    find: (app: string, version: string, filter: Parameters<ArtifactIndex['find']>[2]) => index.find(app, version, filter),
    /**
     * The manifest, its signature, the provenance and the SBOM as the exact text stored (what was
     * signed), `null` for a file that is not there (an artifact built before signing).
     */
    async attestations(id: ArtifactId): Promise<ArtifactAttestations> {
      const { key } = await located(id);
      const beside = artifactFilesBeside(key);
      const [manifestText, signature, provenance, sbom] = await Promise.all([text(key), text(beside.signature), text(beside.provenance), text(beside.sbom)]);
      if (manifestText === null) throw new XamalError('not_found', `no artifact for ${describe(id)} on that target (its manifest is gone from the store)`);
      return { manifestKey: key, manifest: manifestText, signature, provenance, sbom };
    },
    /** One stored document beside the artifact (its provenance envelope or SBOM) as stored; not_found, naming it, when absent. */
    async attachment(id: ArtifactId, which: 'provenance' | 'sbom'): Promise<Buffer> {
      const { key } = await located(id);
      const body = await store.get(artifactFilesBeside(key)[which]);
      if (!body) throw new XamalError('not_found', `no ${which === 'sbom' ? 'SBOM' : 'provenance'} stored for ${describe(id)} on that target (built before the farm ${which === 'sbom' ? 'made SBOMs' : 'signed artifacts'}?)`);
      return body;
    },
    /** Where a server can GET the tarball for a while: presigned by the store, or signed by the API. */
    async downloadLink(id: ArtifactId, d: DownloadSettings, apiBase: string): Promise<DownloadLink> {
      const m = await manifest(id);
      if (!(await store.exists(m.tarball.key))) throw new XamalError('unavailable', `artifact ${m.tarball.key} is listed but its tarball is missing from the store`);
      const exp = Math.floor(Date.now() / 1000) + d.ttlSeconds;
      const expires = new Date(exp * 1000).toISOString();
      if (d.mode === 'presign' && store.presignGet) return { url: await store.presignGet(m.tarball.key, d.ttlSeconds), sha256: m.tarball.sha256, expires };
      const filename = m.tarball.key.slice(m.tarball.key.lastIndexOf('/') + 1);
      const token = signDownload(d.secret, { key: m.tarball.key, sha256: m.tarball.sha256, filename, exp });
      return { url: `${apiBase.replace(/\/+$/, '')}/v1/downloads/${token}`, sha256: m.tarball.sha256, expires };
    },
    /** A stored object as a stream (for links the API signed). */
    async open(key: string): Promise<{ body: Readable; size: number }> {
      const obj = await store.getStream(key);
      if (!obj) throw new XamalError('not_found', `no object ${key} in the store (removed since the link was made?)`);
      return obj;
    },
  };
}
export type ArtifactService = ReturnType<typeof artifactService>;
