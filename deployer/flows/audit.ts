import { appendAuditCommand, parseAuditLog, readAuditCommand, type AuditEntry } from '../commands/audit.ts';
import type { HostSession } from '../remote.ts';
import type { RemoteContext } from './context.ts';
import { onSessions, type HostOutcome } from './parallel.ts';

/**
 * Appends one audit line on the host, secrets redacted. Best effort: a failed audit write is
 * reported through `say` and never turns a done action into a failure.
 */
export async function recordAudit(ctx: RemoteContext, session: HostSession, action: { command?: string; version?: string | undefined; result: string }): Promise<void> {
  const r = ctx.secrets.redact.bind(ctx.secrets);
  const entry: AuditEntry = {
    time: ctx.clock.now().toISOString(),
    performer: r(ctx.performer),
    command: r(action.command ?? ctx.command),
    version: action.version,
    result: r(action.result),
  };
  try {
    const res = await session.run(appendAuditCommand(ctx.layout, entry));
    if (res.code !== 0) ctx.say?.(`${session.host}: audit line not written (exit ${res.code}): ${r(res.stderr.trim())}`);
  } catch (err) {
    ctx.say?.(`${session.host}: audit line not written: ${r((err as Error).message)}`);
  }
}

/** `failed: <first line of the error>` or `ok`. */
export function auditResult(err?: unknown): string {
  if (err === undefined) return 'ok';
  return `failed: ${((err as Error)?.message ?? String(err)).split('\n')[0]}`;
}

export type AuditLog = ReturnType<typeof parseAuditLog>;

/** The last `lines` entries of each selected host's audit log. */
export async function readAudit(ctx: RemoteContext, lines = 50): Promise<HostOutcome<AuditLog>[]> {
  return onSessions(ctx, async (s) => {
    const res = await s.run(readAuditCommand(ctx.layout, lines));
    if (res.code !== 0) throw new Error(`reading ${ctx.layout.audit} failed (exit ${res.code}): ${ctx.secrets.redact(res.stderr.trim())}`);
    return parseAuditLog(ctx.secrets.redact(res.stdout));
  });
}
