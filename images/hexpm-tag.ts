import { ValidationError, tupleVersion, type Libc } from '../core/index.ts';
import { CODENAMES, codenameInfo } from './distros.ts';

/** What a hexpm/elixir tag says about its image (arch and glibc come only from probing it). */
export interface HexpmTag {
  ref: string;
  repository: string;
  tag: string;
  elixir: string;
  otp: string;
  distro: string;
  distroVersion: string;
  libc: Libc;
  codename?: string;
  /** Snapshot date of the base image (debian/ubuntu), `YYYYMMDD`. */
  date?: string;
  slim: boolean;
}

// Anchored patterns over the whole tag; versions may carry -rc parts, so the tag is never split on "-".
const ELIXIR = String.raw`(?<elixir>\d+\.\d+\.\d+(?:-rc\.?\d+)?)`;
const OTP = String.raw`(?<otp>\d+(?:\.\d+){0,5}(?:-rc\d+)?)`;
const OS = String.raw`(?:(?<dist>debian|ubuntu)-(?<codename>[a-z][a-z0-9]*)-(?<date>\d{8})(?<slim>-slim)?|alpine-(?<alpine>\d+\.\d+(?:\.\d+)?))`;
const TAG_RE = new RegExp(`^${ELIXIR}-erlang-${OTP}-${OS}$`);
const REPO_RE = /^(?:(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\/)?hexpm\/elixir$/;

export const HEXPM_TAG_EXAMPLE = 'hexpm/elixir:1.17.3-erlang-27.1.2-debian-bookworm-20241016-slim';

/** Parses `hexpm/elixir:<elixir>-erlang-<otp>-<os>-<osver>[-slim]`, naming what is wrong. */
export function parseHexpmRef(ref: string): HexpmTag {
  const fail = (path: string, message: string): never => {
    throw new ValidationError([{ path, message }], `invalid hexpm image reference ${JSON.stringify(ref)}`);
  };
  if (ref.includes('@')) fail('ref', 'expected a tag, not a digest: digests are written only by `xamal farm images pin`');
  const colon = ref.lastIndexOf(':');
  if (colon < 0) fail('ref', `expected repository:tag like ${HEXPM_TAG_EXAMPLE}`);
  const repository = ref.slice(0, colon);
  const tag = ref.slice(colon + 1);
  if (!REPO_RE.test(repository)) fail('repository', `expected hexpm/elixir, got ${JSON.stringify(repository)}`);
  const m = TAG_RE.exec(tag);
  if (!m?.groups) return fail('tag', `expected <elixir>-erlang-<otp>-<debian|ubuntu>-<codename>-<YYYYMMDD>[-slim] or <elixir>-erlang-<otp>-alpine-<version>, got ${JSON.stringify(tag)}`);
  const g = m.groups;
  const base = { ref, repository, tag, elixir: tupleVersion(g.elixir!), otp: tupleVersion(g.otp!) };
  if (g.alpine) return { ...base, distro: 'alpine', distroVersion: g.alpine.split('.').slice(0, 2).join('.'), libc: 'musl', slim: false };
  const known = codenameInfo(g.codename!);
  if (!known || known.distro !== g.dist) return fail('tag', `unknown ${g.dist} codename ${JSON.stringify(g.codename)}; known: ${Object.keys(CODENAMES).filter((c) => CODENAMES[c]!.distro === g.dist).join(', ')}`);
  return { ...base, distro: known.distro, distroVersion: known.release, libc: 'gnu', codename: g.codename!, date: g.date!, slim: Boolean(g.slim) };
}
