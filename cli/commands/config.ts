import { stringify } from 'yaml';
import { deployerEnv } from '../../deployer/config.ts';
import { loadDeployConfig } from '../../deployer/config/load.ts';
import { DEPLOY_FLAGS, DEPLOY_FLAGS_USAGE } from '../../deployer/config/options.ts';
import { flagCommand, noExtraArgs } from '../args.ts';

const USAGE = `xamal config ${DEPLOY_FLAGS_USAGE}`;

/** Prints the resolved configuration (destination merged, defaults filled, secrets redacted). */
export default flagCommand({
  usage: USAGE,
  flags: DEPLOY_FLAGS,
  examples: [
    ['xamal config', 'The configuration as YAML'],
    ['xamal config -d staging --json', 'With config/deploy.staging.yml merged over it, as JSON'],
  ],
}, async ({ positionals, values }, io) => {
  noExtraArgs(positionals, USAGE);
  const loaded = await loadDeployConfig({ root: process.cwd(), configFile: values['config-file'], destination: values.destination, env: deployerEnv() });
  if (values.verbose && !values.quiet) io.err(`read ${loaded.files.join(', ')}`);
  // Through JSON first: Sensitive values (ssh key_data) become [REDACTED] there.
  const shown = JSON.parse(JSON.stringify({ destination: loaded.destination ?? null, ...loaded.config })) as unknown;
  io.out(values.json ? JSON.stringify(shown, null, 2) : stringify(shown).trimEnd());
  return 0;
});
