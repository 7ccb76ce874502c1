import { XamalError } from '../../core/index.ts';

/**
 * The decisions of a watched rollout and of `deploy --resume`, as pure functions of what was seen:
 * whether the watch passed or failed (from the answers of its checks), whether a version marked
 * failed may be deployed, which hosts a rollback sends to which version, and which hosts a resume
 * acts on. `flows/rollout.ts` and `flows/resume.ts` read the hosts and carry the decisions out.
 */

export interface WatchPolicy {
  /** The window after the switch, seconds. */
  windowS: number;
  /** Failed checks in a row on one host that fail the rollout. */
  failures: number;
  /** The most 5xx answers through Caddy on one host, in percent (undefined: not checked)… */
  max5xxPercent?: number | undefined;
  /** …judged once the host counted this many answers since the switch. */
  minRequests?: number;
}

/** A host's answers through Caddy since the switch (its access log), and how many were 5xx. */
export interface HostCounts {
  answers: number;
  errors5xx: number;
}

/** The 5xx share that failed a rollout: on which host, counted how. */
export interface FiveXx extends HostCounts {
  host: string;
  percent: number;
  max: number;
}

const pct = (c: HostCounts) => (c.answers ? (100 * c.errors5xx) / c.answers : 0);

/**
 * Pure: the first host (in the order given) whose 5xx share is over the policy's maximum, once it
 * counted `minRequests` answers; undefined when none is (or nothing is checked).
 */
export function over5xx(policy: WatchPolicy, counts: ReadonlyMap<string, HostCounts>): FiveXx | undefined {
  if (policy.max5xxPercent === undefined) return undefined;
  for (const [host, c] of counts) {
    if (c.answers >= (policy.minRequests ?? 1) && pct(c) > policy.max5xxPercent) return { host, ...c, percent: Math.round(pct(c) * 10) / 10, max: policy.max5xxPercent };
  }
  return undefined;
}

/**
 * Pure: the hosts whose access log counted nothing although the watch's own checks through Caddy got
 * answers there — a log Caddy does not write (no `/var/log/caddy` it may write in: run xamal setup).
 */
export function silentAccessLogs(counts: ReadonlyMap<string, HostCounts>, answers: readonly WatchAnswer[]): string[] {
  return [...counts].filter(([h, c]) => c.answers === 0 && answers.some((a) => a.host === h && a.status > 0)).map(([h]) => h);
}

/** `web1: 34 of 120 answers through Caddy were 5xx (28.3 % > max_5xx_percent 10 %)`. */
export const describe5xx = (f: FiveXx) => `${f.host}: ${f.errors5xx} of ${f.answers} answers through Caddy were 5xx (${f.percent} % > max_5xx_percent ${f.max} %)`;

/** One check's answer on a host: its HTTP status (0: no answer), seconds after the watch began. */
export interface WatchAnswer {
  host: string;
  atS: number;
  status: number;
  error?: string;
}

export type WatchVerdict =
  | { state: 'watching' }
  | { state: 'passed'; checks: number }
  | { state: 'failed'; host: string; answers: WatchAnswer[]; reason: string; fiveXx?: FiveXx };

export const answerOk = (a: Pick<WatchAnswer, 'status'>) => a.status >= 200 && a.status < 300;

/** `503 at 5.2 s`, `no answer at 6.1 s (curl: (7) …)`. */
export function describeAnswer(a: WatchAnswer): string {
  return `${a.status ? a.status : 'no answer'} at ${a.atS.toFixed(1)} s${a.error ? ` (${a.error})` : ''}`;
}

/** The first run of `n` failed answers in a row of one host, by when it reached `n`; undefined when none did. */
function firstFailingRun(answers: readonly WatchAnswer[], n: number): WatchAnswer[] | undefined {
  const runs = new Map<string, WatchAnswer[]>();
  for (const a of [...answers].sort((x, y) => x.atS - y.atS)) {
    const run = answerOk(a) ? [] : [...(runs.get(a.host) ?? []), a];
    runs.set(a.host, run);
    if (run.length >= n) return run;
  }
  return undefined;
}

/**
 * Pure: the watch's verdict from every answer seen so far and each host's counts through Caddy since
 * the switch. Failed as soon as one host answered `failures` checks in a row with anything but a
 * 2xx (or not at all), or its 5xx share went over `max5xxPercent` (`over5xx`); passed once
 * `elapsedS` reaches the window with neither; watching otherwise. `check` names what was requested.
 */
export function watchVerdict(policy: WatchPolicy, answers: readonly WatchAnswer[], elapsedS: number, check: string, counts: ReadonlyMap<string, HostCounts> = new Map()): WatchVerdict {
  const run = firstFailingRun(answers, policy.failures);
  if (run) {
    const host = run[0]!.host;
    return { state: 'failed', host, answers: run, reason: `${host}: ${run.length === 1 ? 'a check failed' : `${run.length} checks in a row failed`} (${check}): ${run.map(describeAnswer).join(', ')}` };
  }
  const over = over5xx(policy, counts);
  if (over) return { state: 'failed', host: over.host, answers: [], reason: describe5xx(over), fiveXx: over };
  if (elapsedS >= policy.windowS) return { state: 'passed', checks: answers.length };
  return { state: 'watching' };
}

/** A version a watched rollout rolled back, as kept on the hosts (`APP/failed/<version>.json`). */
export interface FailedMark {
  version: string;
  /** When it was rolled back (ISO). */
  time: string;
  performer: string;
  /** The host whose checks failed, and what was requested there. */
  host: string;
  check: string;
  reason: string;
  answers: WatchAnswer[];
  /** When the 5xx share failed it: the host's counts through Caddy. */
  fiveXx?: FiveXx;
  /** Per host, the version switched back to. */
  rolledBackTo: Record<string, string>;
}

/** Pure: parses the marks read from a host (one JSON document per line); lines that are not marks are skipped. */
export function parseFailedMarks(text: string): FailedMark[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        const v = JSON.parse(l) as FailedMark;
        return v && typeof v === 'object' && typeof v.version === 'string' && typeof v.time === 'string' ? [v] : [];
      } catch {
        return [];
      }
    });
}

/**
 * Pure: the refusal of a deploy of `version` when any host keeps it marked failed, naming when and
 * why it failed; none with `force`, or when no host marks it.
 */
export function failedVersionRefusal(version: string, marks: readonly FailedMark[], force: boolean): XamalError | undefined {
  const mark = marks.filter((m) => m.version === version).sort((a, b) => b.time.localeCompare(a.time))[0];
  if (!mark || force) return undefined;
  return new XamalError('conflict', `${version} failed after its switch on ${mark.time} (deploy by ${mark.performer}) and was rolled back: ${mark.reason}\ndeploy it again anyway with --force`, {
    details: { failed: mark },
  });
}

/** What a deploy made live on a host: per role, the version that was live before (if any). */
export interface SwitchedHost {
  host: string;
  roles: { role: string; previous?: string | undefined }[];
}

/**
 * Pure: where a rollback sends each host: the version its primary role (else its first role) ran
 * before the switch, hosts grouped by that version; hosts with nothing before it in `none`.
 */
export function rollbackTargets(switched: readonly SwitchedHost[], primaryRole: string): { groups: Map<string, string[]>; none: string[] } {
  const groups = new Map<string, string[]>();
  const none: string[] = [];
  for (const h of switched) {
    const prev = (h.roles.find((r) => r.role === primaryRole) ?? h.roles[0])?.previous;
    if (prev) groups.set(prev, [...(groups.get(prev) ?? []), h.host]);
    else none.push(h.host);
  }
  return { groups, none };
}

/** The version a deploy (or rollback) set out to make live, and where: `APP/last-deploy.json`. */
export interface DeployAttempt {
  version: string;
  time: string;
  performer: string;
  command: string;
  hosts: string[];
  roles: string[];
}

/** What a deploy ended with, added to its attempt record (`app details` shows it). */
export interface AttemptOutcome {
  /** When it ended (ISO). */
  ended: string;
  ok: string[];
  failed: string[];
  /** Set when a watched rollout rolled the version back. */
  rolledBack?: string;
  watch?: { result: 'passed' | 'failed'; checks: number; elapsedS: number; counts?: Record<string, HostCounts> };
  /** Set by a resume: when it ran, and the hosts it acted on. */
  resumed?: { time: string; hosts: string[] };
}

/** An attempt as kept on the hosts: `updated` and `outcome` once it ended (or a resume of it did). */
export type AttemptRecord = DeployAttempt & { updated?: string; outcome?: AttemptOutcome };

/** Pure: the newest attempt among those read from the hosts (unreadable ones skipped). */
export function latestAttempt(texts: readonly string[]): AttemptRecord | undefined {
  const all = texts.flatMap((t) => {
    try {
      const v = JSON.parse(t) as AttemptRecord;
      return v && typeof v.version === 'string' && typeof v.time === 'string' && Array.isArray(v.hosts) && Array.isArray(v.roles) ? [v] : [];
    } catch {
      return [];
    }
  });
  const when = (x: AttemptRecord) => x.updated ?? x.time;
  return all.sort((a, b) => when(b).localeCompare(when(a)))[0];
}

/** What runs on a host now, per role of the attempt: the live slot's version, and whether it runs. */
export type HostLive = { roles: { role: string; version: string | undefined; running: boolean }[] } | { error: string };

/**
 * Pure: the hosts a resume acts on — those of the attempt (among the selected ones) where some role
 * of the attempt does not run its version live, or that could not be read — and those it leaves
 * alone, each with why.
 */
export function resumeSelection(attempt: DeployAttempt, selected: readonly string[], live: ReadonlyMap<string, HostLive>): { act: string[]; done: string[]; why: Record<string, string> } {
  const act: string[] = [];
  const done: string[] = [];
  const why: Record<string, string> = {};
  for (const host of selected.filter((h) => attempt.hosts.includes(h))) {
    const l = live.get(host) ?? { error: 'not read' };
    const behind = 'error' in l ? [] : l.roles.filter((r) => r.version !== attempt.version || !r.running);
    if ('error' in l) why[host] = `not read: ${l.error}`;
    else if (behind.length) why[host] = behind.map((r) => `${r.role} ${r.running ? `live at ${r.version ?? 'nothing'}` : `not running${r.version ? ` (${r.version})` : ''}`}`).join(', ');
    else why[host] = `runs ${attempt.version}`;
    ('error' in l || behind.length ? act : done).push(host);
  }
  return { act, done, why };
}
