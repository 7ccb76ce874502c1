import { BuildIdParamsSchema } from '../../api/schemas/builds.ts';
import { XamalError } from '../../core/index.ts';
import { farmClient } from '../../deployer/farm-client.ts';
import { parseFlags, usageError } from '../args.ts';
import { cliConfig } from '../config.ts';
import type { Io } from '../io.ts';

export const BUILD_JOB_VERBS = ['list', 'show', 'logs', 'cancel'] as const;
type Verb = (typeof BUILD_JOB_VERBS)[number];

const USAGE =
  'xamal build list [--app APP] [--commit SHA] [--target TUPLE] [--state STATE] [--limit N] [--cursor C] | show|logs|cancel BUILD_ID [-f|--follow]  [--farm URL] [--json]\n' +
  '  list: the newest builds (of a commit or a prefix of it, a target tuple, a state: waiting, active, completed, failed, delayed or\n' +
  '  prioritized; at most 200 a page, --cursor for the next);\n' +
  '  show: the build\'s state, phase, attempts, failure and artifact; logs: its log (-f: follow it live until the build ends,\n' +
  '  exit 9 if it failed); cancel: remove it from its queue, or stop the worker running it';

const FLAGS = {
  farm: { type: 'string' },
  app: { type: 'string' },
  state: { type: 'string' },
  limit: { type: 'string' },
  commit: { type: 'string' },
  target: { type: 'string' },
  cursor: { type: 'string' },
  json: { type: 'boolean' },
  follow: { type: 'boolean', short: 'f' },
} as const;

/** `xamal build list` and `show|logs|cancel ID`: builds through the API's routes (GET /v1/builds, GET, GET …/logs[?follow], DELETE). */
export async function buildJobCommand(verb: Verb, args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, FLAGS, USAGE);
  const cfg = cliConfig();
  const farm = values.farm ?? cfg.farmUrl;
  if (!farm || !cfg.farmToken) throw usageError(`missing ${[!farm && '--farm (or XAMAL_FARM_URL)', !cfg.farmToken && 'XAMAL_FARM_TOKEN'].filter(Boolean).join(', ')}`, USAGE);
  const client = farmClient(farm, cfg.farmToken);
  if (verb === 'list') {
    if (positionals.length) throw usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, USAGE);
    const { app, state, commit, target, cursor } = values;
    const { builds, nextCursor } = await client.list({ app, state, commit, target, cursor, ...(values.limit ? { limit: Number(values.limit) } : {}) });
    if (values.json) io.out(JSON.stringify({ builds, ...(nextCursor ? { nextCursor } : {}) }, null, 2));
    else {
      for (const b of builds) io.out(`${b.id}  ${b.state}${b.phase && b.state === 'active' ? ` (${b.phase})` : ''}  ${b.app}  ${b.tuple}  ${new Date(b.createdAt).toISOString()}`);
      if (nextCursor) io.err(`more: the same with --cursor ${nextCursor}`);
    }
    return 0;
  }
  if (values.app || values.state || values.limit || values.commit || values.target || values.cursor) throw usageError('--app, --commit, --target, --state, --limit, --cursor: only with list', USAGE);
  if (positionals.length !== 1) throw usageError(positionals.length ? `unexpected argument ${JSON.stringify(positionals[1])}` : 'missing BUILD_ID (from xamal build --json, or POST /v1/builds)', USAGE);
  const id = positionals[0]!;
  if (!BuildIdParamsSchema.shape.id.safeParse(id).success) throw usageError(`BUILD_ID: expected an id like b0123… (b and 32 hex characters), got ${JSON.stringify(id)}`, USAGE);
  if (values.follow && verb !== 'logs') throw usageError('-f/--follow: only with logs', USAGE);
  if (verb === 'cancel') {
    const r = await client.cancel(id);
    io.out(values.json ? JSON.stringify(r) : `${id}: ${r.outcome}`);
    return 0;
  }
  if (verb === 'show') {
    const st = await client.status(id);
    if (values.json) io.out(JSON.stringify(st, null, 2));
    else {
      io.out(`${id}: ${st.state}${st.phase && st.state !== 'completed' ? ` (${st.phase})` : ''}, ${st.attemptsMade} attempt${st.attemptsMade === 1 ? '' : 's'}`);
      if (st.waitingReason) io.out(`waiting: ${st.waitingReason}`);
      if (st.failedReason) io.out(`failed: ${st.failedReason}`);
      if (st.result) io.out(`artifact: ${st.result.tuple} ${st.result.manifestKey} sha256:${st.result.sha256}${st.result.cached ? ' (already built)' : ''}`);
    }
    return st.state === 'failed' ? 9 : 0;
  }
  if (!values.follow) {
    const text = await client.logs(id);
    if (!text) throw new XamalError('not_found', `no build ${id} (or no log yet)`);
    io.out(text.trimEnd());
    return 0;
  }
  const end = await client.followLogs(id, (line) => io.out(line));
  if (end.state === 'failed') io.err(`${id} failed${end.failedReason ? `: ${end.failedReason}` : ''}`);
  return end.state === 'completed' ? 0 : 9;
}
