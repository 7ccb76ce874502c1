import { rolesOnHost } from '../commands/layout.ts';
import { listReleasesCommand, parseSlotState, removeReleasesCommand, slotStateCommand } from '../commands/slots.ts';
import { must } from '../remote.ts';
import type { RemoteContext } from './context.ts';
import { onSessions, type HostOutcome } from './parallel.ts';

/** Keeps `retain` releases per host, never the one a slot points at (running or previous). */
export async function pruneFlow(ctx: RemoteContext, retain = ctx.config.retainReleases, hosts: readonly string[] = ctx.targets.hosts): Promise<HostOutcome<string[]>[]> {
  return onSessions(ctx, async (s, h) => {
    const all = (await must(s, listReleasesCommand(ctx.layout))).split('\n').filter(Boolean);
    const keep = new Set(all.slice(0, retain));
    for (const role of rolesOnHost(ctx.config, h)) {
      const st = parseSlotState(await must(s, slotStateCommand(ctx.layout, role.name)));
      for (const v of [st.slots.blue.release, st.slots.green.release, st.current]) if (v) keep.add(v.slice(v.lastIndexOf('/') + 1));
    }
    const remove = all.filter((v) => !keep.has(v));
    if (remove.length) await must(s, removeReleasesCommand(ctx.layout, remove));
    return remove;
  }, hosts);
}

/**
 * After a deploy, as Kamal prunes after its deploys: each host the new version went live on keeps
 * `retain_releases` releases, never one a slot points at (the running one and the previous one).
 * Each host's outcome is kept apart: a prune that fails is reported, the deploy stays a success.
 */
export async function pruneAfterDeploy(ctx: RemoteContext, deployed: readonly HostOutcome<unknown>[]): Promise<Map<string, HostOutcome<string[]>>> {
  const hosts = deployed.filter((o) => o.ok).map((o) => o.host);
  if (!hosts.length) return new Map();
  return new Map((await pruneFlow(ctx, ctx.config.retainReleases, hosts)).map((o) => [o.host, o]));
}

/** `pruned a b` / `prune failed: why` / nothing, for a host's deploy line. */
export function prunedWords(o: HostOutcome<string[]> | undefined, redact: (t: string) => string): string | undefined {
  if (!o) return undefined;
  if (!o.ok) return `prune FAILED: ${redact(o.error.message).trim().split('\n').join(' ')}`;
  return o.value.length ? `pruned ${o.value.join(' ')}` : undefined;
}

/** A host's deploy record fields (`--json`): the releases pruned, or why the prune failed. */
export function pruneFields(o: HostOutcome<string[]> | undefined, redact: (t: string) => string): { pruned?: string[]; pruneError?: string } {
  if (!o) return {};
  return o.ok ? { pruned: o.value } : { pruneError: redact(o.error.message) };
}
