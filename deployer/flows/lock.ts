import { XamalError } from '../../core/index.ts';
import { primaryHost } from '../commands/layout.ts';
import { acquireLockCommand, breakLockCommand, LOCK_EXIT, lockStatusCommand, releaseLockCommand } from '../commands/lock.ts';
import type { HostSession } from '../remote.ts';
import { recordAudit } from './audit.ts';
import type { RemoteContext } from './context.ts';

/**
 * The deploy lock on the primary host. One holder at a time (mkdir is atomic); the holder's details
 * say who, from where, since when, for which version and why. A lock older than the TTL, or held
 * by a process of this machine that is gone, is stale: reported as such and breakable with
 * `force`. Commands run by a hook of a locked deploy (XAMAL_LOCK=true) reuse the lock.
 */

export const DEFAULT_LOCK_TTL_S = 3600;
const POLL_MS = 1000;

export interface LockDetails {
  holder: string;
  /** The machine the holder ran on. */
  host: string;
  /** Set only while the holding command runs (deploy); a manual `lock acquire` has none. */
  pid?: number;
  time: string;
  version?: string;
  message?: string;
}

export type LockState = { locked: false } | { locked: true; details: LockDetails | undefined; raw: string; stale: string | undefined };

export interface LockOptions {
  message?: string | undefined;
  version?: string | undefined;
  /** Seconds to keep trying while someone else holds it. */
  waitS?: number | undefined;
  /** Break a stale lock. */
  force?: boolean | undefined;
  /** Record this process's pid (the lock lives as long as it does). */
  pid?: boolean | undefined;
  ttlS?: number | undefined;
}

export function parseLockDetails(raw: string): LockDetails | undefined {
  try {
    const v = JSON.parse(raw) as LockDetails;
    return v && typeof v === 'object' && typeof v.holder === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Why a lock is stale, or undefined when it is live. */
export function staleReason(d: LockDetails | undefined, ctx: Pick<RemoteContext, 'clock' | 'local'>, ttlS = DEFAULT_LOCK_TTL_S): string | undefined {
  if (!d) return 'it has no readable details';
  const age = (ctx.clock.now().getTime() - Date.parse(d.time)) / 1000;
  if (!Number.isFinite(age)) return 'its time is unreadable';
  if (age > ttlS) return `older than ${Math.round(ttlS / 60)} min (${Math.round(age / 60)} min)`;
  if (d.pid !== undefined && d.host === ctx.local.host && !ctx.local.isAlive(d.pid)) return `its process ${d.pid} on ${d.host} is gone`;
  return undefined;
}

export function describeHolder(d: LockDetails | undefined): string {
  if (!d) return 'an unknown holder';
  return `${d.holder} (on ${d.host}${d.pid !== undefined ? `, pid ${d.pid}` : ''}, since ${d.time}${d.version ? `, version ${d.version}` : ''}${d.message ? `: ${JSON.stringify(d.message)}` : ''})`;
}

async function primarySession(ctx: RemoteContext): Promise<HostSession> {
  return ctx.pool.session(primaryHost(ctx.config));
}

const noApp = (ctx: RemoteContext, host: string) => new XamalError('not_found', `${host}: ${ctx.layout.root} does not exist; run \`xamal setup\` first`);

export async function lockStatus(ctx: RemoteContext, ttlS = DEFAULT_LOCK_TTL_S): Promise<LockState> {
  const s = await primarySession(ctx);
  const r = await s.run(lockStatusCommand(ctx.layout));
  if (r.code === LOCK_EXIT.held) return { locked: false };
  if (r.code === LOCK_EXIT.noApp) throw noApp(ctx, s.host);
  if (r.code !== 0) throw new XamalError('external', `${s.host}: lock status failed (exit ${r.code}): ${r.stderr.trim()}`);
  const details = parseLockDetails(r.stdout);
  return { locked: true, details, raw: r.stdout, stale: staleReason(details, ctx, ttlS) };
}

/** XAMAL_LOCK=true: a hook of a deploy that holds the lock is calling xamal. */
export function lockHeldByParent(ctx: Pick<RemoteContext, 'env'>): boolean {
  return ctx.env.XAMAL_LOCK === 'true';
}

export type Acquired = { reused: true } | { reused: false; details: LockDetails; broke?: LockDetails | undefined };

/**
 * Takes the lock, waiting up to `waitS` seconds while it is held. Held by someone else → `conflict`
 * naming the holder (and whether it is stale, which `force` breaks).
 */
export async function acquireLock(ctx: RemoteContext, opts: LockOptions = {}): Promise<Acquired> {
  if (lockHeldByParent(ctx)) return { reused: true };
  const s = await primarySession(ctx);
  const deadline = ctx.clock.now().getTime() + (opts.waitS ?? 0) * 1000;
  let broke: LockDetails | undefined;
  let breaks = 0;
  for (;;) {
    const details: LockDetails = {
      holder: ctx.performer,
      host: ctx.local.host,
      ...(opts.pid ? { pid: ctx.local.pid } : {}),
      time: ctx.clock.now().toISOString(),
      ...(opts.version ? { version: opts.version } : {}),
      ...(opts.message ? { message: opts.message } : {}),
    };
    const r = await s.run(acquireLockCommand(ctx.layout, `${JSON.stringify(details)}\n`));
    if (r.code === 0) {
      await recordAudit(ctx, s, { command: 'lock acquire', version: opts.version, result: opts.message ? `ok: ${opts.message}` : 'ok' });
      return { reused: false, details, broke };
    }
    if (r.code === LOCK_EXIT.noApp) throw noApp(ctx, s.host);
    if (r.code !== LOCK_EXIT.held) throw new XamalError('external', `${s.host}: acquiring the lock failed (exit ${r.code}): ${r.stderr.trim()}`);
    const holder = parseLockDetails(r.stdout);
    const stale = staleReason(holder, ctx, opts.ttlS);
    if (stale && opts.force && breaks++ < 3) {
      const b = await s.run(breakLockCommand(ctx.layout, r.stdout));
      if (b.code !== 0 && b.code !== LOCK_EXIT.changed) throw new XamalError('external', `${s.host}: breaking the stale lock failed (exit ${b.code}): ${b.stderr.trim()}`);
      if (b.code === 0) {
        broke = holder;
        ctx.say?.(`broke the stale lock of ${describeHolder(holder)}: ${stale}`);
        await recordAudit(ctx, s, { command: 'lock break', result: `ok: stale lock of ${holder?.holder ?? 'unknown'} (${stale})` });
      }
      continue;
    }
    if (ctx.clock.now().getTime() < deadline) {
      await ctx.clock.sleep(Math.min(POLL_MS, Math.max(0, deadline - ctx.clock.now().getTime())));
      continue;
    }
    throw new XamalError('conflict', `deploy lock on ${s.host} is held by ${describeHolder(holder)}${stale ? `; it is stale (${stale}): pass --force to break it` : ''}`, {
      details: { holder: holder ?? null, stale: stale ?? null },
    });
  }
}

/** Removes the lock, whoever holds it. False when there was none. */
export async function releaseLock(ctx: RemoteContext): Promise<boolean> {
  if (lockHeldByParent(ctx)) return false;
  const s = await primarySession(ctx);
  const r = await s.run(releaseLockCommand(ctx.layout));
  if (r.code === LOCK_EXIT.held) return false;
  if (r.code !== 0) throw new XamalError('external', `${s.host}: releasing the lock failed (exit ${r.code}): ${r.stderr.trim()}`);
  await recordAudit(ctx, s, { command: 'lock release', result: 'ok' });
  return true;
}

/**
 * Runs `fn` holding the lock (with this process's pid), releasing it afterwards whatever happens;
 * reuses the parent's lock under XAMAL_LOCK=true. For deploy, rollback and the like (part 2).
 */
export async function withLock<T>(ctx: RemoteContext, opts: Omit<LockOptions, 'pid'>, fn: () => Promise<T>): Promise<T> {
  const got = await acquireLock(ctx, { ...opts, pid: true });
  if (got.reused) return fn();
  try {
    return await fn();
  } finally {
    try {
      await releaseLock(ctx);
    } catch (releaseErr) {
      ctx.say?.(`could not release the lock: ${(releaseErr as Error).message}`);
    }
  }
}
