import { XamalError } from '../../core/index.ts';
import { acquireLock, describeHolder, lockStatus, releaseLock } from '../../deployer/flows/lock.ts';
import { flagCommand, onlyAction, usageError } from '../args.ts';
import type { FlagTable } from '../help.ts';
import { printDryRun, REMOTE_FLAGS, REMOTE_FLAGS_USAGE, withRemote } from '../remote.ts';

const USAGE = `xamal lock status | acquire -m MESSAGE [--lock-wait SECONDS] [--force] | release  ${REMOTE_FLAGS_USAGE}`;

const FLAGS = {
  ...REMOTE_FLAGS,
  message: { type: 'string', short: 'm', valueName: 'MESSAGE', description: 'acquire: why the lock is taken (shown to whoever finds it held)' },
  'lock-wait': { type: 'string', valueName: 'SECONDS', description: 'acquire: wait this long for a lock someone else holds', defaultText: '0' },
  force: { type: 'boolean', description: 'acquire: break a stale lock (its holder gone)' },
} as const satisfies FlagTable;

/** The deploy lock on the primary host: who holds it, take it (with a message), release it. */
export default flagCommand({
  usage: USAGE,
  description: 'The lock is a directory on the primary host that deploys, rollbacks and app stop/start/maintenance take and release themselves; take it by hand to keep them away during maintenance.',
  flags: FLAGS,
  examples: [
    ['xamal lock status', 'Who holds the lock, since when, and why'],
    ["xamal lock acquire -m 'database migration'", 'Keep deploys away until xamal lock release'],
  ],
}, async ({ positionals, values }, io) => {
  const action = onlyAction(positionals, ['status', 'acquire', 'release'], USAGE);
  if (action === 'acquire' && !values.message) throw usageError('lock acquire needs a message (-m "why")', USAGE);
  const wait = values['lock-wait'] === undefined ? undefined : Number(values['lock-wait']);
  if (wait !== undefined && !(wait >= 0)) throw usageError(`--lock-wait expects seconds, got ${JSON.stringify(values['lock-wait'])}`, USAGE);

  return withRemote(values, { command: `lock ${action}`, secrets: false }, async (remote) => {
    try {
      const { ctx } = remote;
      if (action === 'status') {
        const st = await lockStatus(ctx);
        printDryRun(io, remote);
        if (values.json) io.out(JSON.stringify(st.locked ? { locked: true, details: st.details ?? null, stale: st.stale ?? null } : { locked: false }, null, 2));
        else io.out(st.locked ? `locked by ${describeHolder(st.details)}${st.stale ? `\nstale: ${st.stale} (xamal lock acquire --force breaks it)` : ''}` : 'not locked');
        return 0;
      }
      if (action === 'acquire') {
        const got = await acquireLock(ctx, { message: values.message, waitS: wait, force: values.force });
        printDryRun(io, remote);
        if (got.reused) io.out('lock held by the calling deploy (XAMAL_LOCK=true): reused');
        else {
          if (got.broke) io.err(`broke the stale lock of ${describeHolder(got.broke)}`);
          if (values.json) io.out(JSON.stringify({ acquired: true, details: got.details }, null, 2));
          else io.out(`acquired the deploy lock: ${describeHolder(got.details)}`);
        }
        return 0;
      }
      const released = await releaseLock(ctx);
      printDryRun(io, remote);
      if (values.json) io.out(JSON.stringify({ released }));
      else io.out(released ? 'released the deploy lock' : 'not locked');
      return 0;
    } catch (err) {
      if (err instanceof XamalError) printDryRun(io, remote);
      throw err;
    }
  });
});
