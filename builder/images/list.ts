import { dockerPlatform, type Arch } from '../../core/index.ts';
import type { Catalog } from '../../images/catalog.ts';
import { platformTuple, suiteDistro } from '../../images/catalog.ts';
import type { LockFile } from '../../images/lock.ts';

export interface ImageRow {
  tuple: string | null;
  ref: string;
  digest: string | null;
  arch: Arch;
  platform: string;
  flavour: 'builder' | 'runtime';
  source: 'hexpm' | 'recipe' | 'registry';
  /** Where it came from: the hexpm tag or the recipe (`debian bookworm`). */
  origin: string;
  status: 'ready' | 'not built' | 'not pinned';
}

/** Pure: every image the farm can use (locked) and every catalog entry still missing a digest. */
export function imageRows(catalog: Catalog, committed: LockFile, local: LockFile): ImageRow[] {
  const rows: ImageRow[] = [];
  for (const e of [...committed.images, ...local.images]) {
    for (const p of e.platforms) {
      rows.push({
        tuple: platformTuple(e, p.arch) ?? null,
        ref: e.ref,
        digest: p.digest ?? e.digest,
        arch: p.arch,
        platform: dockerPlatform(p.arch),
        flavour: e.flavour,
        source: e.source,
        origin: e.recipe ? `recipe debian ${e.recipe.suite} (${suiteDistro(e.recipe.suite)})` : `${e.source} ${e.ref}`,
        status: 'ready',
      });
    }
  }
  for (const c of catalog.images) {
    if (c.source === 'hexpm') {
      for (const arch of c.arches) {
        if (!rows.some((r) => r.ref === c.ref && r.arch === arch)) {
          rows.push({ tuple: null, ref: c.ref, digest: null, arch, platform: dockerPlatform(arch), flavour: 'builder', source: 'hexpm', origin: `hexpm ${c.ref}`, status: 'not pinned' });
        }
      }
    } else {
      for (const arch of c.arches) {
        for (const flavour of c.flavours) {
          const built = local.images.some((e) => e.recipe?.suite === c.suite && e.recipe.arch === arch && e.recipe.flavour === flavour);
          if (!built) {
            rows.push({ tuple: null, ref: `(recipe ${c.suite} ${arch} ${flavour})`, digest: null, arch, platform: dockerPlatform(arch), flavour, source: 'recipe', origin: `recipe debian ${c.suite} (${suiteDistro(c.suite)})`, status: 'not built' });
          }
        }
      }
    }
  }
  return rows;
}
