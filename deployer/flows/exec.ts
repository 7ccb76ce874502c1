import { XamalError } from '../../core/index.ts';
import { userShellCommand } from '../commands/exec.ts';
import { auditResult, recordAudit } from './audit.ts';
import type { RemoteContext } from './context.ts';
import { onSessions, type HostOutcome } from './parallel.ts';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A host whose command exited non-zero: its output is kept for the report. */
export class HostCommandError extends XamalError {
  constructor(
    readonly host: string,
    readonly result: ExecResult,
  ) {
    super('external', `exited ${result.code}${result.stderr.trim() ? `: ${result.stderr.trim().split('\n').slice(-3).join('\n')}` : ''}`);
  }
}

/**
 * `xamal server exec`: the same command line on every selected host in parallel; output redacted.
 * A non-zero exit or an unreachable host is that host's failure; the others still report.
 */
export async function execOnHosts(ctx: RemoteContext, line: string): Promise<HostOutcome<ExecResult>[]> {
  const redact = (t: string) => ctx.secrets.redact(t);
  return onSessions(ctx, async (s, host) => {
    const r = await s.run(userShellCommand(line));
    const result = { code: r.code, stdout: redact(r.stdout), stderr: redact(r.stderr) };
    await recordAudit(ctx, s, { command: `server exec ${line}`, result: r.code === 0 ? 'ok' : auditResult(new Error(`exit ${r.code}`)) });
    if (r.code !== 0) throw new HostCommandError(host, result);
    return result;
  });
}
