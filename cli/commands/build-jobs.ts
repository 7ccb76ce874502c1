import { BuildIdParamsSchema } from '../../api/schemas/builds.ts';
import { XamalError } from '../../core/index.ts';
import { farmClient } from '../../deployer/farm-client.ts';
import { parseFlags, usageError } from '../args.ts';
import { cliConfig } from '../config.ts';
import type { CommandHelp, FlagTable } from '../help.ts';
import type { CliCommand, Io } from '../io.ts';

export const BUILD_JOB_VERBS = ['list', 'show', 'logs', 'cancel'] as const;
type Verb = (typeof BUILD_JOB_VERBS)[number];

const USAGE = 'xamal build list [--app APP] [--commit SHA] [--target TUPLE] [--state STATE] [--limit N] [--cursor C] | show|logs|cancel BUILD_ID [-f|--follow]  [--farm URL] [--json]';

const FLAGS = {
  farm: { type: 'string', valueName: 'URL', description: "The farm's URL", defaultText: 'XAMAL_FARM_URL' },
  app: { type: 'string', valueName: 'APP', description: "list: only this app's builds" },
  state: { type: 'string', valueName: 'STATE', description: 'list: only builds in this state: waiting, active, completed, failed, delayed or prioritized' },
  limit: { type: 'string', valueName: 'N', description: 'list: at most N builds a page (the farm caps it at 200)' },
  commit: { type: 'string', valueName: 'SHA', description: 'list: only builds of this commit (or a prefix of it, 4–40 hex characters)' },
  target: { type: 'string', valueName: 'TUPLE', description: 'list: only builds for this target tuple' },
  cursor: { type: 'string', valueName: 'CURSOR', description: 'list: the page after the one that printed this cursor (nextCursor)' },
  json: { type: 'boolean', description: 'Print the answer as JSON' },
  follow: { type: 'boolean', short: 'f', description: 'logs: follow the live log until the build ends (exit 9 if it failed)' },
} as const satisfies FlagTable;

/** Each verb's --help: usage and examples (the flags are the one table above). */
const VERB_HELP: Record<Verb, Omit<CommandHelp, 'flags'>> = {
  list: {
    usage: 'xamal build list [--app APP] [--commit SHA] [--target TUPLE] [--state STATE] [--limit N] [--cursor CURSOR] [--farm URL] [--json]',
    description: 'Newest first. The token is XAMAL_FARM_TOKEN (read scope). When more builds match, the cursor of the next page is printed on stderr (nextCursor with --json).',
    examples: [['xamal build list --app shop --state failed', "The shop app's failed builds, newest first"]],
  },
  show: {
    usage: 'xamal build show BUILD_ID [--farm URL] [--json]',
    description: 'BUILD_ID is the id xamal build --json (or POST /v1/builds) gave: b and 32 hex characters.',
    examples: [['xamal build show b0123456789abcdef0123456789abcdef', "That build's state, and its artifact when it is done"]],
  },
  logs: {
    usage: 'xamal build logs BUILD_ID [-f|--follow] [--farm URL]',
    examples: [['xamal build logs -f b0123456789abcdef0123456789abcdef', 'Follow the live log until the build ends']],
  },
  cancel: {
    usage: 'xamal build cancel BUILD_ID [--farm URL] [--json]',
    description: 'Needs a token with the build scope.',
    examples: [['xamal build cancel b0123456789abcdef0123456789abcdef', 'Stop that build']],
  },
};

/** The flags each verb's help shows (the others are refused with that verb). */
const VERB_FLAGS: Record<Verb, (keyof typeof FLAGS)[]> = { list: ['app', 'commit', 'target', 'state', 'limit', 'cursor', 'farm', 'json'], show: ['farm', 'json'], logs: ['follow', 'farm'], cancel: ['farm', 'json'] };

/** `xamal build VERB …` as a command of the table (its own --help). */
export function jobCommand(verb: Verb): CliCommand {
  const flags = Object.fromEntries(VERB_FLAGS[verb].map((name) => [name, FLAGS[name]]));
  return { help: { ...VERB_HELP[verb], flags }, run: (args, io) => buildJobCommand(verb, args, io) };
}

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
      // BullMQ counts an attempt when it ends: the one running now counts too.
      const attempts = st.attemptsMade + (st.state === 'active' ? 1 : 0);
      io.out(`${id}: ${st.state}${st.phase && st.state !== 'completed' ? ` (${st.phase})` : ''}, ${attempts} attempt${attempts === 1 ? '' : 's'}`);
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
