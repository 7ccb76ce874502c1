import { exitCodeFor, isXamalError } from '../../core/index.ts';
import type { HostSession } from '../remote.ts';
import type { RemoteContext } from './context.ts';

/**
 * Runs one function per host with a concurrency cap and collects every host's result or error:
 * a failing (or unreachable) host never hides the others' results.
 */

export type HostOutcome<T> = { host: string; ok: true; value: T; ms: number } | { host: string; ok: false; error: Error; ms: number };

export const DEFAULT_CONCURRENCY = 10;

export async function onHosts<T>(hosts: readonly string[], fn: (host: string) => Promise<T>, { concurrency = DEFAULT_CONCURRENCY }: { concurrency?: number } = {}): Promise<HostOutcome<T>[]> {
  const out: HostOutcome<T>[] = new Array(hosts.length);
  let next = 0;
  const worker = async () => {
    while (next < hosts.length) {
      const i = next++;
      const host = hosts[i]!;
      const t0 = performance.now();
      try {
        const value = await fn(host);
        out[i] = { host, ok: true, value, ms: Math.round(performance.now() - t0) };
      } catch (err) {
        out[i] = { host, ok: false, error: err instanceof Error ? err : new Error(String(err)), ms: Math.round(performance.now() - t0) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, hosts.length)) }, worker));
  return out;
}

/** `fn` with a session on each of `hosts` (default: the selected ones), at the context's concurrency. */
export function onSessions<T>(ctx: RemoteContext, fn: (session: HostSession, host: string) => Promise<T>, hosts: readonly string[] = ctx.targets.hosts): Promise<HostOutcome<T>[]> {
  return onHosts(hosts, async (host) => fn(await ctx.pool.session(host), host), { concurrency: ctx.concurrency });
}

export function failed<T>(outcomes: readonly HostOutcome<T>[]): Extract<HostOutcome<T>, { ok: false }>[] {
  return outcomes.filter((o): o is Extract<HostOutcome<T>, { ok: false }> => !o.ok);
}

/** `3 hosts: 2 ok, 1 failed (web3)`. */
export function summary<T>(outcomes: readonly HostOutcome<T>[]): string {
  const bad = failed(outcomes);
  const n = outcomes.length;
  return `${n} host${n === 1 ? '' : 's'}: ${n - bad.length} ok${bad.length ? `, ${bad.length} failed (${bad.map((b) => b.host).join(', ')})` : ''}`;
}

/** 0 when every host succeeded; else the failures' common error kind, or `external`'s code. */
export function exitCodeForOutcomes<T>(outcomes: readonly HostOutcome<T>[]): number {
  const bad = failed(outcomes);
  if (!bad.length) return 0;
  const codes = new Set(bad.map((b) => (isXamalError(b.error) ? b.error.code : 'external')));
  return exitCodeFor(codes.size === 1 ? [...codes][0]! : 'external');
}
