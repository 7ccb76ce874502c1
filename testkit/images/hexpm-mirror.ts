import { z } from 'zod';
import { dockerPlatform, type Arch } from '../../core/index.ts';
import { splitRef } from '../../images/lock.ts';
import { MANIFEST_LIST_V2, mountBlob, putRawManifest, registryReader } from '../../builder/registry.ts';

/**
 * The lab's stand-in for Docker Hub's hexpm/elixir: images built here (in the local registry), put
 * under hexpm's repository name with a multi-platform index (a manifest list, as hexpm publishes),
 * in the registry the engine uses as its docker.io mirror. No bytes are copied: blobs are mounted
 * across repositories and each platform's manifest keeps its exact bytes (so its digest).
 */
export interface MirrorSource {
  arch: Arch;
  /** `127.0.0.1:5000/xamal/builder@sha256:…` — an image in `registry`. */
  pinned: string;
}

const ManifestRefs = z.object({ config: z.object({ digest: z.string() }), layers: z.array(z.object({ digest: z.string() })) });

export async function publishHexpmIndex(registry: string, ref: string, sources: readonly MirrorSource[]): Promise<{ index: string; platforms: { arch: Arch; digest: string }[] }> {
  const reader = registryReader(`http://${registry}`);
  const repo = splitRef(ref).repository;
  const tag = splitRef(ref).tag!;
  const manifests = [];
  for (const s of sources) {
    const at = s.pinned.indexOf('@');
    const from = splitRef(s.pinned.slice(0, at)).repository.slice(registry.length + 1);
    const m = await reader.manifest(from, s.pinned.slice(at + 1));
    const refs = ManifestRefs.parse(JSON.parse(m.raw.toString('utf8')));
    for (const d of [refs.config.digest, ...refs.layers.map((l) => l.digest)]) await mountBlob(registry, repo, d, from);
    await putRawManifest(registry, repo, m.digest, m.raw, m.mediaType);
    const [os, architecture, variant] = dockerPlatform(s.arch).split('/');
    manifests.push({ mediaType: m.mediaType, size: m.raw.length, digest: m.digest, platform: { architecture: architecture!, os: os!, ...(variant ? { variant } : {}) } });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_LIST_V2, manifests }, null, 3));
  const digest = await putRawManifest(registry, repo, tag, index, MANIFEST_LIST_V2);
  return { index: digest, platforms: manifests.map((m, i) => ({ arch: sources[i]!.arch, digest: m.digest })) };
}
