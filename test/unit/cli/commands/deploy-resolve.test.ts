import { describe, expect, it } from 'vitest';
import { resolveKey } from '../../../../cli/commands/deploy.ts';
import type { HostFingerprint } from '../../../../core/index.ts';

const host = (over: Partial<HostFingerprint> = {}): HostFingerprint => ({
  os: 'linux', arch: 'x86_64', libc: 'gnu', libcVersion: '2.36', distro: 'debian', distroVersion: '12', distroCodename: 'bookworm',
  libraries: ['libc.so.6', 'libcrypto.so.3', 'libtinfo.so.6'], hostname: 'web-1', kernel: '6.1.0', ...over,
});

describe('deploy: one resolve per kind of host', () => {
  it('hosts that differ only in name, kernel or the order of their libraries share one answer', () => {
    expect(resolveKey(host({ hostname: 'web-2', kernel: '6.1.99', libraries: ['libtinfo.so.6', 'libc.so.6', 'libcrypto.so.3'] }))).toBe(resolveKey(host()));
  });

  it('a host with another library, libc or release asks on its own', () => {
    const base = resolveKey(host());
    expect(resolveKey(host({ libraries: ['libc.so.6', 'libtinfo.so.6'] }))).not.toBe(base);
    expect(resolveKey(host({ libcVersion: '2.31' }))).not.toBe(base);
    expect(resolveKey(host({ distroVersion: '13' }))).not.toBe(base);
  });
});
