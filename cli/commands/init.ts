import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMissingFile, XamalError } from '../../core/index.ts';
import { applyInit, initPlan, phoenixProject } from '../../deployer/config/init.ts';
import { flagCommand, noExtraArgs } from '../args.ts';

const USAGE = 'xamal init [--phoenix] [-q]';

/** The project's mix.exs, or a usage error saying --phoenix needs one. */
async function mixExs(root: string): Promise<string> {
  try {
    return await readFile(join(root, 'mix.exs'), 'utf8');
  } catch (err) {
    if (isMissingFile(err)) throw new XamalError('usage', '--phoenix: no mix.exs in this directory (run xamal init in the Phoenix project)');
    throw err;
  }
}

/**
 * Writes config/deploy.yml, .xamal/secrets and sample hooks; refuses to overwrite anything. With
 * --phoenix, a deploy.yml and secrets a Phoenix app runs with (its name and module from mix.exs, a
 * SECRET_KEY_BASE of 64 characters, as `mix phx.gen.secret` makes).
 */
export default flagCommand({
  usage: USAGE,
  flags: {
    quiet: { type: 'boolean', short: 'q', description: 'Print only the files created' },
    phoenix: { type: 'boolean', description: "For a Phoenix app: its name and module from mix.exs, and a new SECRET_KEY_BASE in .xamal/secrets" },
  },
  examples: [
    ['xamal init', 'The files to start from'],
    ['xamal init --phoenix', 'The same, filled in for the Phoenix app in this directory'],
  ],
}, async ({ positionals, values }, io) => {
  noExtraArgs(positionals, USAGE);
  const root = process.cwd();
  const phoenix = values.phoenix ? phoenixProject(await mixExs(root), randomBytes(48).toString('base64')) : undefined;
  const written = await applyInit(root, initPlan(undefined, undefined, phoenix));
  for (const f of written) io.out(`created ${f}`);
  if (!values.quiet) io.err('Keep .xamal/secrets out of git (add .xamal/secrets* to .gitignore). Next: edit config/deploy.yml, then `xamal config`.');
  return 0;
});
