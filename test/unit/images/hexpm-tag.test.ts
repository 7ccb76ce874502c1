import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../core/errors/index.ts';
import { HEXPM_TAG_EXAMPLE, parseHexpmRef, type HexpmTag } from '../../../images/hexpm-tag.ts';

/** The error `parseHexpmRef` throws for `ref`, with its one issue. */
function failure(ref: string): { error: ValidationError; path: string; message: string } {
  try {
    parseHexpmRef(ref);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    const error = err as ValidationError;
    expect(error.issues).toHaveLength(1);
    return { error, path: error.issues[0]!.path, message: error.issues[0]!.message };
  }
  throw new Error(`expected ${ref} to be rejected`);
}

type Expected = Omit<HexpmTag, 'ref' | 'repository' | 'tag'> & { repository?: string };

describe('parseHexpmRef on valid tags', () => {
  const VALID: [string, Expected][] = [
    [
      'hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim',
      { elixir: '1.17.3', otp: '27.1.2', distro: 'debian', distroVersion: '12', libc: 'gnu', codename: 'bookworm', date: '20241016', slim: true },
    ],
    [
      'hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016',
      { elixir: '1.17.3', otp: '27.1.2', distro: 'debian', distroVersion: '12', libc: 'gnu', codename: 'bookworm', date: '20241016', slim: false },
    ],
    [
      'docker.io/hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim',
      { repository: 'docker.io/hexpm/elixir', elixir: '1.17.3', otp: '27.1.2', distro: 'debian', distroVersion: '12', libc: 'gnu', codename: 'bookworm', date: '20241016', slim: true },
    ],
    [
      'index.docker.io/hexpm/elixir:1.16.3-erlang-26.2.5-debian-bullseye-20240513-slim',
      { repository: 'index.docker.io/hexpm/elixir', elixir: '1.16.3', otp: '26.2.5', distro: 'debian', distroVersion: '11', libc: 'gnu', codename: 'bullseye', date: '20240513', slim: true },
    ],
    [
      'hexpm/elixir:1.18.3-erlang-27.3.4-debian-trixie-20250520-slim',
      { elixir: '1.18.3', otp: '27.3.4', distro: 'debian', distroVersion: '13', libc: 'gnu', codename: 'trixie', date: '20250520', slim: true },
    ],
    [
      'hexpm/elixir:1.14.5-erlang-25.3.2.12-debian-buster-20240612',
      { elixir: '1.14.5', otp: '25.3.2.12', distro: 'debian', distroVersion: '10', libc: 'gnu', codename: 'buster', date: '20240612', slim: false },
    ],
    [
      'hexpm/elixir:1.17.3-erlang-27.1.2-ubuntu-jammy-20240808',
      { elixir: '1.17.3', otp: '27.1.2', distro: 'ubuntu', distroVersion: '22.04', libc: 'gnu', codename: 'jammy', date: '20240808', slim: false },
    ],
    [
      'hexpm/elixir:1.18.4-erlang-28.0.1-ubuntu-noble-20250619',
      { elixir: '1.18.4', otp: '28.0.1', distro: 'ubuntu', distroVersion: '24.04', libc: 'gnu', codename: 'noble', date: '20250619', slim: false },
    ],
    [
      'hexpm/elixir:1.13.4-erlang-24.3.4.17-ubuntu-focal-20240427',
      { elixir: '1.13.4', otp: '24.3.4.17', distro: 'ubuntu', distroVersion: '20.04', libc: 'gnu', codename: 'focal', date: '20240427', slim: false },
    ],
    ['hexpm/elixir:1.15.7-erlang-26.1.2-alpine-3.18.4', { elixir: '1.15.7', otp: '26.1.2', distro: 'alpine', distroVersion: '3.18', libc: 'musl', slim: false }],
    ['hexpm/elixir:1.18.3-erlang-27.3.3-alpine-3.21.3', { elixir: '1.18.3', otp: '27.3.3', distro: 'alpine', distroVersion: '3.21', libc: 'musl', slim: false }],
    ['hexpm/elixir:1.16.0-erlang-26.2.1-alpine-3.19', { elixir: '1.16.0', otp: '26.2.1', distro: 'alpine', distroVersion: '3.19', libc: 'musl', slim: false }],
    [
      'hexpm/elixir:1.18.0-rc.0-erlang-27.1.2-debian-bookworm-20241016-slim',
      { elixir: '1.18.0~rc.0', otp: '27.1.2', distro: 'debian', distroVersion: '12', libc: 'gnu', codename: 'bookworm', date: '20241016', slim: true },
    ],
    [
      'hexpm/elixir:1.17.0-rc.1-erlang-27.0-rc3-debian-bookworm-20240423-slim',
      { elixir: '1.17.0~rc.1', otp: '27.0~rc3', distro: 'debian', distroVersion: '12', libc: 'gnu', codename: 'bookworm', date: '20240423', slim: true },
    ],
    [
      'hexpm/elixir:1.16.2-erlang-27.0-rc3-ubuntu-jammy-20240405',
      { elixir: '1.16.2', otp: '27.0~rc3', distro: 'ubuntu', distroVersion: '22.04', libc: 'gnu', codename: 'jammy', date: '20240405', slim: false },
    ],
    [
      'hexpm/elixir:1.16.3-erlang-26.2.5.3-debian-bookworm-20240904-slim',
      { elixir: '1.16.3', otp: '26.2.5.3', distro: 'debian', distroVersion: '12', libc: 'gnu', codename: 'bookworm', date: '20240904', slim: true },
    ],
    [
      'hexpm/elixir:1.11.4-erlang-21.3.8.24.1-debian-buster-20230612',
      { elixir: '1.11.4', otp: '21.3.8.24.1', distro: 'debian', distroVersion: '10', libc: 'gnu', codename: 'buster', date: '20230612', slim: false },
    ],
  ];

  it.each(VALID)('reads %s', (ref, expected) => {
    const { repository = 'hexpm/elixir', ...fields } = expected;
    const tag = ref.slice(ref.lastIndexOf(':') + 1);
    expect(parseHexpmRef(ref)).toEqual({ ref, repository, tag, ...fields });
  });

  it('reads its own documented example', () => {
    expect(parseHexpmRef(HEXPM_TAG_EXAMPLE).tag).toBe('1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim');
  });

  it('gives alpine tags no codename or date', () => {
    const t = parseHexpmRef('hexpm/elixir:1.15.7-erlang-26.1.2-alpine-3.18.4');
    expect(t).not.toHaveProperty('codename');
    expect(t).not.toHaveProperty('date');
  });
});

describe('parseHexpmRef on invalid references', () => {
  const BAD: [string, string, string, string][] = [
    ['a digest', `hexpm/elixir@sha256:${'a'.repeat(64)}`, 'ref', 'xamal farm images pin'],
    ['a tag with a digest', `hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim@sha256:${'b'.repeat(64)}`, 'ref', 'not a digest'],
    ['another repository', 'elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim', 'repository', 'expected hexpm/elixir, got "elixir"'],
    ['another organisation', 'hexpm/erlang:27.1.2-debian-bookworm-20241016-slim', 'repository', 'expected hexpm/elixir'],
    ['a mirror registry', 'ghcr.io/hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim', 'repository', '"ghcr.io/hexpm/elixir"'],
    ['no tag', 'hexpm/elixir', 'ref', 'expected repository:tag like hexpm/elixir:'],
    ['an empty tag', 'hexpm/elixir:', 'tag', 'got ""'],
    ['an unknown codename', 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-forky2-20241016-slim', 'tag', 'unknown debian codename "forky2"; known: buster, bullseye, bookworm, trixie, forky'],
    ['an ubuntu codename under debian', 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-jammy-20240808', 'tag', 'unknown debian codename "jammy"'],
    ['a debian codename under ubuntu', 'hexpm/elixir:1.17.3-erlang-27.1.2-ubuntu-bookworm-20240808', 'tag', 'known: focal, jammy, noble'],
    ['an Object.prototype key as codename', 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-constructor-20241016', 'tag', 'unknown debian codename "constructor"'],
    ['a 7-digit date', 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-2024101-slim', 'tag', '<YYYYMMDD>'],
    ['a 9-digit date', 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-202410160-slim', 'tag', '<YYYYMMDD>'],
    ['no date', 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-slim', 'tag', '<YYYYMMDD>'],
    ['trailing junk', 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim-extra', 'tag', 'got "1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim-extra"'],
    ['a trailing newline', 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim\n', 'tag', 'expected <elixir>-erlang-<otp>'],
    ['no -erlang-', 'hexpm/elixir:1.17.3-27.1.2-debian-bookworm-20241016-slim', 'tag', 'expected <elixir>-erlang-<otp>'],
    ['otp- instead of erlang-', 'hexpm/elixir:1.17.3-otp-27.1.2-debian-bookworm-20241016-slim', 'tag', 'expected <elixir>-erlang-<otp>'],
    ['an uppercase distro', 'hexpm/elixir:1.17.3-erlang-27.1.2-Debian-bookworm-20241016-slim', 'tag', 'expected <elixir>-erlang-<otp>'],
    ['an uppercase codename', 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-BOOKWORM-20241016-slim', 'tag', 'expected <elixir>-erlang-<otp>'],
    ['an uppercase RC', 'hexpm/elixir:1.18.0-RC.0-erlang-27.1.2-debian-bookworm-20241016-slim', 'tag', 'expected <elixir>-erlang-<otp>'],
    ['an uppercase repository', 'HEXPM/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim', 'repository', 'expected hexpm/elixir'],
    ['a two-component Elixir', 'hexpm/elixir:1.17-erlang-27.1.2-debian-bookworm-20241016-slim', 'tag', 'expected <elixir>-erlang-<otp>'],
    ['an unknown OS', 'hexpm/elixir:1.17.3-erlang-27.1.2-fedora-40-20241016', 'tag', 'expected <elixir>-erlang-<otp>'],
    ['an alpine version with a date', 'hexpm/elixir:1.15.7-erlang-26.1.2-alpine-3.18.4-20241016', 'tag', 'alpine-<version>'],
    ['an alpine tag marked slim', 'hexpm/elixir:1.15.7-erlang-26.1.2-alpine-3.18.4-slim', 'tag', 'alpine-<version>'],
    ['an empty string', '', 'ref', 'expected repository:tag'],
  ];

  it.each(BAD)('rejects %s with a message naming the problem', (_what, ref, path, fragment) => {
    const f = failure(ref);
    expect(f.path).toBe(path);
    expect(f.message).toContain(fragment);
    expect(f.error.code).toBe('validation');
    expect(f.error.message).toContain(`invalid hexpm image reference ${JSON.stringify(ref)}`);
  });

  it('never reads a version out of a tag it rejects (no splitting on "-")', () => {
    // The -rc part belongs to the version: reading fields by "-" would take "rc.0" for the OTP.
    expect(parseHexpmRef('hexpm/elixir:1.18.0-rc.0-erlang-27.1.2-debian-bookworm-20241016-slim').otp).toBe('27.1.2');
    expect(failure('hexpm/elixir:1.18.0-rc-erlang-27.1.2-debian-bookworm-20241016-slim').path).toBe('tag');
  });
});
