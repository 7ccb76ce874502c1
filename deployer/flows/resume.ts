import { XamalError } from '../../core/index.ts';
import { rolesOnHost } from '../commands/layout.ts';
import { readAttemptCommand, writeAttemptCommand } from '../commands/rollout.ts';
import { parseSlotState, slotStateCommand } from '../commands/slots.ts';
import { must } from '../remote.ts';
import type { RemoteContext } from './context.ts';
import { onSessions } from './parallel.ts';
import { latestAttempt, resumeSelection, type AttemptRecord, type DeployAttempt, type HostLive } from './rollout-plan.ts';

/**
 * The last deploy attempt, kept on the hosts (`APP/last-deploy.json`: the version, who, when, which
 * hosts and roles, and once it ended how it went), and `deploy --resume`, which reads it back and
 * acts only on the hosts where that version is not live yet.
 */

/** Writes the attempt on the primary host and `hosts` (best effort: an unreachable host is said, not fatal). */
export async function writeAttempt(ctx: RemoteContext, primary: string, attempt: AttemptRecord, hosts: readonly string[]): Promise<void> {
  const json = ctx.secrets.redact(JSON.stringify(attempt));
  const out = await onSessions(ctx, async (s) => {
    const r = await s.run(writeAttemptCommand(ctx.layout, json));
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.trim()}`);
  }, [...new Set([primary, ...hosts])]);
  for (const o of out) if (!o.ok) ctx.say?.(`${o.host}: deploy attempt not recorded: ${ctx.secrets.redact(o.error.message.split('\n')[0]!)}`);
}

/** The newest attempt kept on the primary host or any selected host (unreachable hosts skipped). */
export async function readAttempt(ctx: RemoteContext, primary: string): Promise<AttemptRecord | undefined> {
  const texts = await onSessions(ctx, async (s) => (await s.run(readAttemptCommand(ctx.layout))).stdout, [...new Set([primary, ...ctx.targets.hosts])]);
  return latestAttempt(texts.flatMap((o) => (o.ok && o.value.trim() ? [o.value] : [])));
}

/** Per host of the attempt (among the selected ones): each of its roles' live version and whether it runs. */
async function liveVersions(ctx: RemoteContext, attempt: DeployAttempt): Promise<Map<string, HostLive>> {
  const hosts = ctx.targets.hosts.filter((h) => attempt.hosts.includes(h));
  const out = await onSessions(ctx, async (s, h) => {
    const roles = rolesOnHost(ctx.config, h).filter((r) => attempt.roles.includes(r.name));
    const live: Extract<HostLive, { roles: unknown }>['roles'] = [];
    for (const r of roles) {
      const st = parseSlotState(await must(s, slotStateCommand(ctx.layout, r.name)));
      const rel = st.live ? st.slots[st.live].release : undefined;
      live.push({ role: r.name, version: rel?.slice(rel.lastIndexOf('/') + 1), running: st.live !== undefined && st.slots[st.live].active });
    }
    return live;
  }, hosts);
  return new Map(out.map((o) => [o.host, o.ok ? { roles: o.value } : { error: ctx.secrets.redact(o.error.message.split('\n')[0]!) }]));
}

export interface ResumePlan {
  attempt: AttemptRecord;
  act: string[];
  done: string[];
  why: Record<string, string>;
}

/**
 * `deploy --resume`: the last attempt and, among its hosts, those it acts on (the version not live
 * there, or unreadable) and those it leaves alone. `version`, when given, must be the attempt's.
 */
export async function resumePlan(ctx: RemoteContext, primary: string, version: string | undefined): Promise<ResumePlan> {
  const attempt = await readAttempt(ctx, primary);
  if (!attempt) throw new XamalError('not_found', `no deploy to resume: no host keeps a deploy attempt (${ctx.layout.root}/last-deploy.json)`);
  if (version !== undefined && version !== attempt.version) {
    throw new XamalError('usage', `--resume continues the last deploy, of ${attempt.version} (${attempt.time}, by ${attempt.performer}); --version ${version} names another: deploy it without --resume`);
  }
  const sel = resumeSelection(attempt, ctx.targets.hosts, await liveVersions(ctx, attempt));
  return { attempt, ...sel };
}

