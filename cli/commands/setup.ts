import { setup, type HostSetup } from '../../deployer/flows/setup.ts';
import { flagCommand, noExtraArgs } from '../args.ts';
import type { CliCommand } from '../io.ts';
import { REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, withRemote } from '../remote.ts';

/** Lines for one host: what changed, warnings, or that nothing did. */
export function setupLines(v: HostSetup): string[] {
  return [...(v.changes.length ? v.changes : ['nothing changed']), ...v.warnings.map((w) => `warning: ${w}`)];
}

/**
 * `xamal setup`: bootstrap (packages, Caddy) and the app's directories, units, env files and Caddy
 * route. `xamal server bootstrap`: the host-level part only, without secrets. Idempotent.
 */
export function setupCommand(name: 'setup' | 'server bootstrap'): CliCommand {
  const usage = `xamal ${name} ${REMOTE_FLAGS_USAGE}`;
  const bootstrapOnly = name === 'server bootstrap';
  return flagCommand({
    usage,
    description: bootstrapOnly ? 'Reads no secrets.' : 'Runs server bootstrap first; safe to run again (prints only what changed).',
    flags: REMOTE_FLAGS,
    examples: [[`xamal ${name} --dry-run`, 'Print the steps it would run on each host'], [`xamal ${name} --hosts web2`, 'Only the new host web2']],
  }, async ({ positionals, values }, io) => {
    noExtraArgs(positionals, usage);
    return withRemote(values, { command: name, secrets: !bootstrapOnly, say: (l) => io.err(l) }, async (remote) =>
      reportOutcomes(io, remote, await setup(remote.ctx, { bootstrapOnly }), { json: values.json, render: setupLines }),
    );
  });
}

export default setupCommand('setup');
