import { dockerPlatform, type Arch } from '../../core/index.ts';
import type { Catalog } from '../../images/catalog.ts';
import { platformTuple, suiteDistro } from '../../images/catalog.ts';
import type { LockFile } from '../../images/lock.ts';
import { DEFAULT_PREFER, pickSource, toolchainProblems, type ToolchainCatalog } from '../../images/toolchains.ts';

/** How the farm gets an Elixir (the source its preferred origins pick): compiled from source, or precompiled for one OTP major (a Debian package). */
function elixirHow(toolchains: ToolchainCatalog, elixir: string, prefer: readonly string[]): string {
  const entry = toolchains.elixir.find((e) => e.version === elixir);
  let picked;
  try {
    picked = entry && pickSource('Elixir', entry, prefer).source;
  } catch {
    picked = undefined; // no source from these origins: the row's problems say so
  }
  return picked?.precompiled ? `precompiled for OTP ${picked.precompiled.otpMajor} (${picked.origin} package)` : 'from source';
}

/** Where an image built here comes from: the suite's packages, or OTP from source and Elixir from source or precompiled, on it. */
const recipeOrigin = (suite: string, toolchain: { otp: string; elixir: string } | undefined, elixirFrom = 'from source') =>
  `recipe debian ${suite} (${suiteDistro(suite)})${toolchain ? `, OTP ${toolchain.otp} from source + Elixir ${toolchain.elixir} ${elixirFrom}` : ''}`;

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
  status: 'ready' | 'not built' | 'not pinned' | 'cannot build';
  /** Why it cannot be built (status `cannot build`). */
  why?: string;
}

/**
 * Pure: every image the farm can use (locked) and every catalog entry still missing a digest — for
 * one from source, whether this machine (`hostArch`) can build it and, when not, why.
 */
export function imageRows(catalog: Catalog, committed: LockFile, local: LockFile, toolchains: ToolchainCatalog, hostArch: Arch, prefer?: readonly string[]): ImageRow[] {
  const rows: ImageRow[] = [];
  const how = (elixir: string) => elixirHow(toolchains, elixir, prefer ?? DEFAULT_PREFER);
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
        origin: e.recipe ? recipeOrigin(e.recipe.suite, e.recipe.toolchain, e.recipe.toolchain && how(e.recipe.toolchain.elixir)) : `${e.source} ${e.ref}`,
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
    } else if (c.source === 'toolchain') {
      for (const arch of c.arches) {
        const built = local.images.some((e) => e.recipe?.suite === c.suite && e.recipe.arch === arch && e.recipe.toolchain?.otp === c.otp && e.recipe.toolchain.elixir === c.elixir);
        if (built) continue;
        const problems = toolchainProblems(toolchains, c.suite, c.otp, c.elixir, { arch, hostArch, ...(prefer ? { prefer } : {}) });
        const origin = recipeOrigin(c.suite, c, how(c.elixir));
        const ref = `(from source ${c.suite} ${arch} otp${c.otp} elixir${c.elixir})`;
        rows.push({ tuple: null, ref, digest: null, arch, platform: dockerPlatform(arch), flavour: 'builder', source: 'recipe', origin, status: problems.length ? 'cannot build' : 'not built', ...(problems.length ? { why: problems.map((p) => p.message).join('; ') } : {}) });
      }
    } else {
      for (const arch of c.arches) {
        for (const flavour of c.flavours) {
          const built = local.images.some((e) => e.recipe?.suite === c.suite && e.recipe.arch === arch && e.recipe.flavour === flavour && !e.recipe.toolchain);
          if (!built) {
            rows.push({ tuple: null, ref: `(recipe ${c.suite} ${arch} ${flavour})`, digest: null, arch, platform: dockerPlatform(arch), flavour, source: 'recipe', origin: recipeOrigin(c.suite, undefined), status: 'not built' });
          }
        }
      }
    }
  }
  return rows;
}
