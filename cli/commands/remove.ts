import type { RemoteContext } from '../../deployer/flows/context.ts';
import { removeFlow, withRemovalLock, type HostRemoval, type RemoveScope } from '../../deployer/flows/remove.ts';
import { flagCommand, noExtraArgs } from '../args.ts';
import { confirmOrStop } from '../confirm.ts';
import type { FlagTable } from '../help.ts';
import type { CliCommand } from '../io.ts';
import { REMOTE_FLAGS, REMOTE_FLAGS_USAGE, reportOutcomes, withRemote } from '../remote.ts';

const FLAGS = { ...REMOTE_FLAGS, confirmed: { type: 'boolean', short: 'y', description: 'Do not ask: remove at once (needed without a terminal)' } } as const satisfies FlagTable;

/** The question asked before anything is removed: what goes, from which hosts. */
export function removalQuestion(ctx: Pick<RemoteContext, 'layout' | 'targets'>, scope: RemoveScope): string {
  const hosts = ctx.targets.hosts.length <= 3 ? ctx.targets.hosts.join(', ') : `${ctx.targets.hosts.length} hosts`;
  const what = scope === 'all' ? `everything of it: the Caddy route, slot units, releases, slots, ${ctx.layout.root} (env files, lock, audit log) and its user ${ctx.layout.user}` : 'its Caddy route, slot units, releases and slots';
  return `This removes ${ctx.layout.app} (roles ${ctx.targets.roles.join(', ')}) from ${hosts}: ${what}. Are you sure?`;
}

/** Lines for one host: what went, or that nothing was there; what was kept and why. */
export function removalLines(v: HostRemoval): string[] {
  return [...(v.removed.length ? v.removed : ['nothing to remove']), ...v.kept.map((k) => `kept ${k}`)];
}

/**
 * `xamal app remove` (scope `app`) and `xamal remove` (`all`): asks first (-y skips; no terminal and
 * no -y refuses), holds the deploy lock, and reports per host what was removed. Idempotent.
 */
export function removeCommand(scope: RemoveScope): CliCommand {
  const name = scope === 'app' ? 'app remove' : 'remove';
  const usage = `xamal ${name} [-y|--confirmed] ${REMOTE_FLAGS_USAGE}`;
  const help = {
    usage,
    description:
      scope === 'app'
        ? "Takes the app off its hosts: its Caddy route and TLS policy (other apps' routes untouched), its slot units (stopped gracefully, disabled, unit files removed), its releases and slots. /opt/xamal/<app> (env files, lock, audit log) stays. Asks first; holds the deploy lock; a second run finds nothing to remove."
        : "Everything of this app on its hosts: what app remove does, plus /opt/xamal/<app> (env files, lock, audit log) and the app's system user when xamal created it for this app and nothing else uses it. Caddy and the host packages stay (other apps use them). Asks first; a second run finds nothing to remove.",
    flags: FLAGS,
    examples: [
      [`xamal ${name} --dry-run`, 'Print what would be removed on each host'],
      [`xamal ${name} -y -d staging`, 'Remove it from the staging hosts without asking'],
    ] as [string, string][],
  };
  return flagCommand(help, async ({ positionals, values }, io) => {
    noExtraArgs(positionals, usage);
    return withRemote(values, { command: name, secrets: false, say: (l) => io.err(l) }, async (remote) => {
      const { ctx } = remote;
      // A dry run removes nothing: it needs no confirmation.
      if (!remote.recording) await confirmOrStop(io, removalQuestion(ctx, scope), values.confirmed, `xamal ${name}`);
      const outcomes = await withRemovalLock(ctx, name, () => removeFlow(ctx, scope));
      const code = reportOutcomes(io, remote, outcomes, { json: values.json, render: removalLines });
      if (!values.json && !remote.recording && outcomes.every((o) => o.ok && o.value.removed.length === 0)) io.err(`nothing of ${ctx.layout.app} to remove`);
      return code;
    });
  });
}

export default removeCommand('all');
