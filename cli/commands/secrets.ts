import { LocalExecutor } from '../../core/index.ts';
import { deployerEnv } from '../../deployer/config.ts';
import { loadDeployConfig } from '../../deployer/config/load.ts';
import { DEPLOY_FLAGS, DEPLOY_FLAGS_USAGE } from '../../deployer/config/options.ts';
import { loadSecrets } from '../../deployer/secrets.ts';
import { flagCommand, noExtraArgs, takeAction, usageError } from '../args.ts';

const USAGE = `xamal secrets print [--reveal] | extract NAME  ${DEPLOY_FLAGS_USAGE}`;

/** `secrets print`: every secret, redacted unless --reveal. `secrets extract NAME`: one value, for scripts. */
export default flagCommand({
  usage: USAGE,
  description: 'The secrets are read from .xamal/secrets-common, then .xamal/secrets (.xamal/secrets.DESTINATION with -d).',
  flags: { ...DEPLOY_FLAGS, reveal: { type: 'boolean', description: 'print: show the values, not [REDACTED]' } },
  examples: [
    ['xamal secrets print', 'Every secret name, values redacted'],
    ['xamal secrets extract DATABASE_URL -d staging', "One secret's value, for a script"],
  ],
}, async ({ positionals, values }, io) => {
  const [action, rest] = takeAction(positionals, ['print', 'extract'], USAGE);
  if (action === 'print') noExtraArgs(rest, USAGE);
  if (action === 'extract' && rest.length !== 1) throw usageError('expected exactly one secret NAME', USAGE);
  const env = deployerEnv();
  const root = process.cwd();
  const { config, destination } = await loadDeployConfig({ root, configFile: values['config-file'], destination: values.destination, env });
  const secrets = await loadSecrets({ root, secretsPath: config.secretsPath, destination, env, executor: new LocalExecutor(env) });
  if (values.verbose && !values.quiet) io.err(secrets.files.length ? `read ${secrets.files.join(', ')}` : 'no secrets file found');
  if (action === 'extract') {
    io.out(secrets.require(rest[0]!).reveal());
    return 0;
  }
  const shown = (name: string) => (values.reveal ? secrets.require(name).reveal() : String(secrets.require(name)));
  if (values.json) io.out(JSON.stringify(Object.fromEntries(secrets.names().map((n) => [n, shown(n)])), null, 2));
  else for (const n of secrets.names()) io.out(`${n}=${shown(n)}`);
  return 0;
});
