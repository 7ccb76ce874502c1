import { command, type Command } from '../../core/index.ts';
import type { AppLayout } from './layout.ts';

/** The audit log on each host: one JSON line per action (`APP/audit.log`). */

export interface AuditEntry {
  time: string;
  performer: string;
  /** `setup`, `server exec uname -m`, `lock acquire`, … */
  command: string;
  version?: string | undefined;
  /** `ok`, or `failed: <reason>`. */
  result: string;
}

/** One line. Callers pass entries already redacted (`Secrets.redact`); newlines cannot split it. */
export function auditLine(entry: AuditEntry): string {
  return `${JSON.stringify({ time: entry.time, performer: entry.performer, command: entry.command, ...(entry.version ? { version: entry.version } : {}), result: entry.result })}\n`;
}

/** Appends the entry; does nothing when the app directory does not exist yet (before setup). */
export function appendAuditCommand(layout: AppLayout, entry: AuditEntry): Command {
  return command(['sh', '-c', '[ -d "$1" ] || exit 0; umask 077; cat >> "$2"', 'sh', layout.root, layout.audit], { stdin: auditLine(entry), label: 'audit' });
}

/** The last `lines` lines of the log (nothing, exit 0, if there is none yet). */
export function readAuditCommand(layout: AppLayout, lines: number): Command {
  return command(['sh', '-c', '[ -f "$1" ] || exit 0; tail -n "$2" -- "$1"', 'sh', layout.audit, String(lines)], { label: 'read audit log' });
}

/** Parses the log; lines that are not ours are kept as text. */
export function parseAuditLog(text: string): (AuditEntry | { text: string })[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      try {
        const v = JSON.parse(l) as AuditEntry;
        return typeof v === 'object' && v && typeof v.command === 'string' ? v : { text: l };
      } catch {
        return { text: l };
      }
    });
}
