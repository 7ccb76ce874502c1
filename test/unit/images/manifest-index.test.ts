import { describe, expect, it } from 'vitest';
import { ValidationError, XamalError } from '../../../core/errors/index.ts';
import { isIndex, platformDigests } from '../../../images/manifest-index.ts';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

/** An index as hexpm publishes them (BuildKit adds attestation manifests for `unknown/unknown`). */
const index = (manifests: object[]) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
const HEXPM_LIKE = index([
  { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('a'), size: 1, platform: { architecture: 'amd64', os: 'linux' } },
  { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('b'), size: 1, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
  { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('c'), size: 1, platform: { architecture: 'unknown', os: 'unknown' } },
]);

describe('platformDigests', () => {
  it('gives each wanted arch the manifest digest its index lists, skipping attestations', () => {
    expect(platformDigests(HEXPM_LIKE, ['x86_64', 'aarch64'], 'hexpm/elixir:x')).toEqual([
      { arch: 'x86_64', digest: d('a') },
      { arch: 'aarch64', digest: d('b') },
    ]);
    expect(platformDigests(HEXPM_LIKE, ['aarch64'], 'hexpm/elixir:x')).toEqual([{ arch: 'aarch64', digest: d('b') }]);
  });

  it('refuses a wanted arch the index lacks, naming what it has', () => {
    const amd64Only = index([{ digest: d('a'), platform: { architecture: 'amd64', os: 'linux' } }, { digest: d('e'), platform: { architecture: 'amd64', os: 'windows' } }]);
    expect(() => platformDigests(amd64Only, ['x86_64', 'aarch64'], 'hexpm/elixir:x')).toThrow(new XamalError('unsupported', 'hexpm/elixir:x: no aarch64 image in its index (it has: x86_64)'));
  });

  it('refuses a document that is not an index, naming the field', () => {
    const bad = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ digest: 'sha256:short' }] }));
    try {
      platformDigests(bad, ['x86_64'], 'hexpm/elixir:x');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues.map((i) => i.path)).toEqual(['manifests/0/digest']);
    }
    expect(() => platformDigests(Buffer.from('{'), ['x86_64'], 'r')).toThrow(/r: the index is not JSON/);
  });
});

describe('isIndex', () => {
  it('tells an index from a single image manifest by media type or content', () => {
    expect(isIndex(LIST, Buffer.from('{}'))).toBe(true);
    expect(isIndex('', HEXPM_LIKE)).toBe(true);
    expect(isIndex('application/vnd.docker.distribution.manifest.v2+json', Buffer.from(JSON.stringify({ schemaVersion: 2, config: {}, layers: [] })))).toBe(false);
    expect(isIndex('', Buffer.from('not json'))).toBe(false);
  });
});
