import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { checkKey, isMissingFile } from '../core/index.ts';
import { storeError, storeOp, type ObjectStore } from './store.ts';

/**
 * The embedded default store: objects as files under one root. Writes go to a temp file in the same
 * directory and are renamed into place, so a reader sees a whole object or none.
 */
export function localStore(root: string): ObjectStore & { pathOf(key: string): string } {
  const pathOf = (key: string) => join(root, ...checkKey(key).split('/'));
  const atomic = async (key: string, write: (tmp: string) => Promise<void>) => {
    const dest = pathOf(key);
    await mkdir(dirname(dest), { recursive: true });
    const tmp = `${dest}.${randomBytes(6).toString('hex')}.part`;
    try {
      await write(tmp);
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw storeError('put', key, err);
    }
  };
  /** One `get` of the object's file: undefined when there is none. */
  const read = <T>(key: string, run: (path: string) => Promise<T>) => storeOp('get', key, () => run(pathOf(key)), { is: isMissingFile, value: undefined });
  return {
    pathOf,
    put: (key, body) => atomic(key, (tmp) => writeFile(tmp, body)),
    putFile: (key, path) =>
      atomic(key, async (tmp) => {
        await copyFile(path, tmp);
        if ((await stat(tmp)).size !== (await stat(path)).size) throw new Error('short copy');
      }),
    get: (key) => read(key, (path) => readFile(path)),
    getStream: (key) =>
      read(key, async (path) => {
        const size = (await stat(path)).size;
        return { body: createReadStream(path), size };
      }),
    async exists(key) {
      try {
        return (await stat(pathOf(key))).isFile();
      } catch {
        return false;
      }
    },
    async delete(key) {
      await rm(pathOf(key), { force: true });
    },
    async list(prefix) {
      const out: string[] = [];
      // Walk only the deepest directory the prefix names, and in it only the entries that start with
      // the rest (`artifacts/hello/abc1234` → the folders of artifacts/hello named abc1234…).
      const cut = prefix.lastIndexOf('/');
      const dirPart = cut >= 0 ? prefix.slice(0, cut) : '';
      const first = prefix.slice(cut + 1);
      const walk = async (dir: string, top: boolean) => {
        let entries;
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch {
          return;
        }
        for (const e of entries) {
          if (top && !e.name.startsWith(first)) continue;
          const p = join(dir, e.name);
          if (e.isDirectory()) await walk(p, false);
          else if (e.isFile() && !e.name.endsWith('.part')) out.push(relative(root, p).split(sep).join('/'));
        }
      };
      await walk(dirPart ? join(root, ...checkKey(dirPart).split('/')) : root, true);
      return out.filter((k) => k.startsWith(prefix)).sort();
    },
  };
}
