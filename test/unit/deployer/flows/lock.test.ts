import { describe, expect, it } from 'vitest';
import { XamalError } from '../../../../core/index.ts';
import { acquireLock, lockStatus, releaseLock, withLock } from '../../../../deployer/flows/lock.ts';
import { FakeHost, fakeHosts } from '../../../../testkit/deployer/fake-host.ts';
import { testContext } from '../../../../testkit/deployer/context.ts';

function primary() {
  const h = new FakeHost('web1');
  h.files.set('/opt/xamal', { type: 'directory', mode: 0o755, owner: 'root' });
  h.files.set('/opt/xamal/shop', { type: 'directory', mode: 0o755, owner: 'deploy' });
  return h;
}

const failure = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return err as XamalError;
  }
  throw new Error('expected a failure');
};

describe('deploy lock', () => {
  it('is taken on the primary host with the holder, host, time, version and message; status shows it; release frees it', async () => {
    const h = primary();
    const { ctx, pool } = testContext({ respond: fakeHosts([h]), command: 'lock acquire' });
    expect(await lockStatus(ctx)).toEqual({ locked: false });
    const got = await acquireLock(ctx, { message: 'db migration', version: 'abc123' });
    expect(got).toEqual({ reused: false, broke: undefined, details: { holder: 'Ada', host: 'laptop', time: '2025-03-01T12:00:00.000Z', version: 'abc123', message: 'db migration' } });
    expect(pool.steps.every((s) => s.host === 'web1')).toBe(true);
    const st = await lockStatus(ctx);
    expect(st).toMatchObject({ locked: true, stale: undefined, details: { holder: 'Ada', message: 'db migration' } });
    expect(await releaseLock(ctx)).toBe(true);
    expect(await releaseLock(ctx)).toBe(false);
    expect(h.files.get('/opt/xamal/shop/audit.log')!.content).toMatch(/"command":"lock acquire".*\n.*"command":"lock release"/);
  });

  it('refuses a second acquire with a conflict naming the holder', async () => {
    const h = primary();
    await acquireLock(testContext({ respond: fakeHosts([h]) }).ctx, { message: 'deploying' });
    const other = testContext({ respond: fakeHosts([h]) }).ctx;
    const err = await failure(acquireLock({ ...other, performer: 'Bob' }, {}));
    expect(err.code).toBe('conflict');
    expect(err.message).toBe('deploy lock on web1 is held by Ada (on laptop, since 2025-03-01T12:00:00.000Z: "deploying")');
  });

  it('waits with --lock-wait, polling until the holder releases it', async () => {
    const h = primary();
    const holder = testContext({ respond: fakeHosts([h]) }).ctx;
    await acquireLock(holder, {});
    let polls = 0;
    const waiter = testContext({
      respond: (step) => {
        if (step.kind === 'run' && step.command.label === 'acquire lock' && ++polls === 3) h.files.delete('/opt/xamal/shop/lock');
        return h.respond(step);
      },
    });
    const got = await acquireLock(waiter.ctx, { waitS: 10 });
    expect(got.reused).toBe(false);
    expect(waiter.sleeps).toEqual([1000, 1000]);
    const late = testContext({ respond: fakeHosts([h]) });
    const err = await failure(acquireLock(late.ctx, { waitS: 2.5 }));
    expect(err.code).toBe('conflict');
    expect(late.sleeps).toEqual([1000, 1000, 500]);
  });

  it('reports a stale lock (older than the TTL, or its process on this machine gone) and breaks it only with force', async () => {
    const h = primary();
    // A deploy (pid recorded) whose process is gone.
    await acquireLock({ ...testContext({ respond: fakeHosts([h]) }).ctx, local: { host: 'laptop', pid: 999, isAlive: () => true } }, { pid: true });
    const { ctx } = testContext({ respond: fakeHosts([h]) });
    expect(await lockStatus(ctx)).toMatchObject({ locked: true, stale: 'its process 999 on laptop is gone' });
    const err = await failure(acquireLock(ctx, {}));
    expect(err.message).toMatch(/held by Ada \(on laptop, pid 999, .*\); it is stale \(its process 999 on laptop is gone\): pass --force to break it/);
    const got = await acquireLock(ctx, { force: true, message: 'after crash' });
    expect(got).toMatchObject({ reused: false, broke: { pid: 999 }, details: { message: 'after crash' } });

    // Older than an hour: stale whoever holds it.
    const later = testContext({ respond: fakeHosts([h]), now: () => new Date('2025-03-01T13:30:00Z') });
    expect(await lockStatus(later.ctx)).toMatchObject({ stale: 'older than 60 min (90 min)' });
    // A fresh lock is not broken by force.
    const fresh = await failure(acquireLock(testContext({ respond: fakeHosts([h]) }).ctx, { force: true }));
    expect(fresh.code).toBe('conflict');
  });

  it('is reused, not taken, under XAMAL_LOCK=true (xamal called from a hook of a locked deploy)', async () => {
    const { ctx, pool } = testContext({ env: { XAMAL_LOCK: 'true' } });
    expect(await acquireLock(ctx, {})).toEqual({ reused: true });
    let ran = false;
    await withLock(ctx, {}, async () => {
      ran = true;
    });
    expect(ran).toBe(true);
    expect(pool.steps).toEqual([]);
  });

  it('withLock holds the lock with this pid for the duration and releases it even when the work fails', async () => {
    const h = primary();
    const { ctx } = testContext({ respond: fakeHosts([h]) });
    const err = await failure(
      withLock(ctx, { version: 'v2' }, async () => {
        expect(JSON.parse(h.files.get('/opt/xamal/shop/lock/details.json')!.content!)).toMatchObject({ pid: 4242, version: 'v2' });
        throw new XamalError('external', 'boom');
      }),
    );
    expect(err.message).toBe('boom');
    expect(h.files.has('/opt/xamal/shop/lock')).toBe(false);
  });

  it('says to run setup first when the app directory does not exist', async () => {
    const err = await failure(acquireLock(testContext({ respond: fakeHosts([new FakeHost('web1')]) }).ctx, {}));
    expect(err).toMatchObject({ code: 'not_found', message: 'web1: /opt/xamal/shop does not exist; run `xamal setup` first' });
  });
});
