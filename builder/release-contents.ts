/**
 * What a release ships, from the paths of its tarball (the scan reads each entry once, builder/elf.ts):
 * the applications under `lib/<app>-<vsn>/` and the runtime under `erts-<vsn>/`, as `mix release`
 * lays them out. Read from the packed tarball, never from the build's files.
 */

export interface ReleaseApp {
  name: string;
  version: string;
}

export interface ReleaseContents {
  /** The ERTS versions of the `erts-<vsn>/` folders (none when the release does not include ERTS). */
  erts: string[];
  /** Every `lib/<app>-<vsn>/` folder, sorted by name then version. */
  apps: ReleaseApp[];
  /** Folders under lib/ or named erts-… that are not `<name>-<version>`, as found. */
  unknown: string[];
  /** More folders than MAX_RELEASE_FOLDERS: the rest were not kept. */
  overflow: boolean;
}

/** Folders kept at most: a release has a few dozen to a few hundred applications. */
export const MAX_RELEASE_FOLDERS = 4096;

const APP_FOLDER = /^([a-z][a-z0-9_]*)-([0-9A-Za-z][0-9A-Za-z.+_~-]{0,63})$/;
const ERTS_FOLDER = /^erts-(\d{1,4}(?:\.\d{1,4}){0,4})$/;

/** Collects the release's folders from its tarball's entries (`add` each entry's normalized path). */
export function releaseFolders() {
  const folders = new Set<string>();
  let overflow = false;
  return {
    add(path: string, isDirectory: boolean): void {
      const [top, second, ...rest] = path.split('/');
      // A folder is a directory entry or the parent of an entry; a file directly in lib/ is none.
      let folder: string | undefined;
      if (top === 'lib' && second && (isDirectory || rest.length > 0)) folder = `lib/${second}`;
      else if (top?.startsWith('erts-') && (isDirectory || second !== undefined)) folder = top;
      if (!folder || folders.has(folder)) return;
      if (folders.size >= MAX_RELEASE_FOLDERS) overflow = true;
      else folders.add(folder);
    },
    contents(): ReleaseContents {
      return releaseContentsOf([...folders], overflow);
    },
  };
}

/** Pure: the release's contents from its folders (`lib/<app>-<vsn>`, `erts-<vsn>`). */
export function releaseContentsOf(folders: readonly string[], overflow = false): ReleaseContents {
  const erts: string[] = [];
  const apps: ReleaseApp[] = [];
  const unknown: string[] = [];
  for (const f of folders) {
    if (f.startsWith('lib/')) {
      const m = APP_FOLDER.exec(f.slice(4));
      if (m) apps.push({ name: m[1]!, version: m[2]! });
      else unknown.push(f);
    } else {
      const m = ERTS_FOLDER.exec(f);
      if (m) erts.push(m[1]!);
      else unknown.push(f);
    }
  }
  apps.sort((a, b) => (a.name === b.name ? (a.version < b.version ? -1 : 1) : a.name < b.name ? -1 : 1));
  return { erts: erts.sort(), apps, unknown, overflow };
}
