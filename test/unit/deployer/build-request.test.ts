import { describe, expect, it } from 'vitest';
import type { HostFingerprint } from '../../../core/index.ts';
import { buildRequestLine } from '../../../deployer/build-request.ts';

const host = (over: Partial<HostFingerprint> = {}): HostFingerprint => ({
  os: 'linux', arch: 'x86_64', libc: 'gnu', libcVersion: '2.36', distro: 'debian', distroVersion: '12', distroCodename: 'bookworm',
  libraries: ['libc.so.6', 'libcrypto.so.3'], ...over,
});
const COMMIT = 'c'.repeat(40);
const base = { farmUrl: 'https://farm.example', app: 'shop', git: 'https://git.example/acme/shop.git', version: COMMIT };

describe('the xamal build line a deploy prints when the farm has no artifact for a host', () => {
  it("asks for the deploy's selector on the host's arch and distro release, by full commit", () => {
    expect(buildRequestLine({ ...base, target: { otp: '27', distro: 'debian' }, host: host({ arch: 'aarch64', distroVersion: '13' }) })).toBe(
      `xamal build --farm https://farm.example --app shop --git https://git.example/acme/shop.git --commit ${COMMIT} --target arch=aarch64,distro=debian13,otp=27`,
    );
  });

  it('asks for a tuple given in deploy.yml as it is, and for a version that is not a full commit by --ref', () => {
    const tuple = 'linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3';
    expect(buildRequestLine({ ...base, version: 'v1.2.0', target: tuple, host: host() })).toBe(
      `xamal build --farm https://farm.example --app shop --git https://git.example/acme/shop.git --ref v1.2.0 --target ${tuple}`,
    );
  });

  it("quotes what a shell would split, keeps the selector's qualifiers, and uploads the checkout (--source .) when it has no origin", () => {
    const line = buildRequestLine({ ...base, git: undefined, version: "it's", target: { qualifiers: ['jit', 'musl'] }, host: host() });
    expect(line).toBe(`xamal build --farm https://farm.example --app shop --source . --ref 'it'\\''s' --target arch=x86_64,distro=debian12,qualifiers=jit+musl`);
  });
});
