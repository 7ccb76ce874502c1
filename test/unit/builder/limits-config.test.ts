import { describe, expect, it } from 'vitest';
import { builderConfig } from '../../../builder/config.ts';
import { DEFAULT_LIMITS } from '../../../builder/plan.ts';

describe('build limits from the environment', () => {
  it('defaults to 64 MiB of output per step, 512 processes per step and 8 GiB of work directory', () => {
    expect(builderConfig({}).limits).toEqual(DEFAULT_LIMITS);
    expect(DEFAULT_LIMITS).toMatchObject({ maxOutputBytes: 64 * 1024 ** 2, pids: 512, diskBytes: 8 * 1024 ** 3 });
  });

  it('reads XAMAL_MAX_STEP_OUTPUT_BYTES, XAMAL_BUILD_PIDS_LIMIT and XAMAL_MAX_BUILD_DISK_BYTES', () => {
    const limits = builderConfig({ XAMAL_MAX_STEP_OUTPUT_BYTES: '1048576', XAMAL_BUILD_PIDS_LIMIT: '128', XAMAL_MAX_BUILD_DISK_BYTES: String(2 * 1024 ** 3) }).limits;
    expect(limits).toEqual({ ...DEFAULT_LIMITS, maxOutputBytes: 1024 ** 2, pids: 128, diskBytes: 2 * 1024 ** 3 });
  });

  it('rejects a limit too small to build anything, naming the setting', () => {
    expect(() => builderConfig({ XAMAL_MAX_STEP_OUTPUT_BYTES: '100' })).toThrow(/XAMAL_MAX_STEP_OUTPUT_BYTES[\s\S]*at least 65536/);
    expect(() => builderConfig({ XAMAL_BUILD_PIDS_LIMIT: '4' })).toThrow(/XAMAL_BUILD_PIDS_LIMIT[\s\S]*at least 32/);
    expect(() => builderConfig({ XAMAL_MAX_BUILD_DISK_BYTES: '1000' })).toThrow(/XAMAL_MAX_BUILD_DISK_BYTES[\s\S]*at least 64 MiB/);
  });

  it('resolves hexpm tags through Docker Hub unless XAMAL_HEXPM_REGISTRY names a mirror (https, or http on loopback)', () => {
    expect(builderConfig({}).hexpmRegistry).toBe('https://registry-1.docker.io');
    expect(builderConfig({ XAMAL_HEXPM_REGISTRY: 'http://127.0.0.1:5000' }).hexpmRegistry).toBe('http://127.0.0.1:5000');
    expect(() => builderConfig({ XAMAL_HEXPM_REGISTRY: 'http://mirror.example:5000' })).toThrow(/XAMAL_HEXPM_REGISTRY[\s\S]*expected https:\/\/, or http:\/\/ to a loopback address/);
  });
});
