/**
 * Codenames as upstream images name them, mapped to the release numbers tuples carry. Used only to
 * read tags and suite names; a built image's facts always come from probing it.
 */
export const CODENAMES: Readonly<Record<string, { distro: string; release: string }>> = {
  buster: { distro: 'debian', release: '10' },
  bullseye: { distro: 'debian', release: '11' },
  bookworm: { distro: 'debian', release: '12' },
  trixie: { distro: 'debian', release: '13' },
  forky: { distro: 'debian', release: '14' },
  focal: { distro: 'ubuntu', release: '20.04' },
  jammy: { distro: 'ubuntu', release: '22.04' },
  noble: { distro: 'ubuntu', release: '24.04' },
};

/** A codename's distro and release; own keys only (`constructor` is not a codename). */
export function codenameInfo(name: string): { distro: string; release: string } | undefined {
  return Object.hasOwn(CODENAMES, name) ? CODENAMES[name] : undefined;
}

/** The Debian suites the farm can build images from. */
export const DEBIAN_SUITES = ['bullseye', 'bookworm', 'trixie'] as const;
export type DebianSuite = (typeof DEBIAN_SUITES)[number];

export function isDebianSuite(s: string): s is DebianSuite {
  return (DEBIAN_SUITES as readonly string[]).includes(s);
}
