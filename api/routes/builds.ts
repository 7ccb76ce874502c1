import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { XamalError } from '../../core/index.ts';
import { required } from '../decorations.ts';
import { found, refuse } from '../errors.ts';
import { rateLimitKey } from '../rate-limit.ts';
import { streamLimit } from '../stream-limit.ts';
import {
  BuildIdParamsSchema,
  BuildListQuerySchema,
  BuildListSchema,
  BuildRequestSchema,
  BuildSetParamsSchema,
  BuildSetSchema,
  BuildStatusSchema,
  CancelResultSchema,
  LogsQuerySchema,
  SubmitResultSchema,
  type LogStreamEnd,
} from '../schemas/builds.ts';
import type { BuildService } from '../services/builds.ts';
import type { TokenEntry } from '../auth.ts';
import type { Caller } from '../owners.ts';

const FOLLOW_POLL_MS = 250;
const FOLLOW_MAX_MS = 3 * 3600_000;
const FINISHED = new Set(['completed', 'failed']);
/** Most log bytes one response (or one SSE stream) carries; workers cap a log at 4 MiB anyway. */
export const DEFAULT_MAX_LOG_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * Takes lines while they fit in `budget` bytes; when one does not, returns how many were taken so
 * the caller can say where to continue (`?start=`).
 */
export function takeWithin(lines: readonly string[], budget: number): { taken: string[]; bytes: number; cut: boolean } {
  const taken: string[] = [];
  let bytes = 0;
  for (const l of lines) {
    const n = Buffer.byteLength(l, 'utf8') + 1;
    if (bytes + n > budget) return { taken, bytes, cut: true };
    taken.push(l);
    bytes += n;
  }
  return { taken, bytes, cut: false };
}

/** The lines of `lines` (the first at `start`) that fit in `budget` bytes, then, if some did not, a marker naming where the rest starts. */
function linesWithin(lines: readonly string[], budget: number, max: number, start: number): { out: string[]; bytes: number; cut: boolean } {
  const { taken, bytes, cut } = takeWithin(lines, budget);
  return { out: cut ? [...taken, `[xamal] log response cut at ${max} bytes; the rest: ?start=${start + taken.length}`] : taken, bytes, cut };
}

interface LogStream {
  builds: BuildService;
  id: string;
  /** Where the lines already read start, and the lines. */
  start: number;
  first: string[];
  maxLog: number;
  req: IncomingMessage;
  res: ServerResponse;
  log: FastifyBaseLogger;
}

/** Server-Sent Events: every log line as it arrives, then an `end` event with the final state. */
async function followLogs({ builds, id, start, first, maxLog, req, res, log }: LogStream): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  let closed = false;
  req.on('close', () => (closed = true));
  // At most maxLog bytes per stream: past that, one marker line, then only the end event.
  let sent = 0;
  let cut = false;
  let next = start;
  const send = (lines: string[]) => {
    if (!cut) {
      const t = linesWithin(lines, maxLog - sent, maxLog, next);
      sent += t.bytes;
      cut = t.cut;
      for (const l of t.out) res.write(`data: ${l.replace(/\r?\n/g, '\ndata: ')}\n\n`);
    }
    next += lines.length;
  };
  send(first);
  const deadline = Date.now() + FOLLOW_MAX_MS;
  try {
    while (!closed && Date.now() < deadline) {
      const st = await builds.status(id);
      const more = await builds.logs(id, next);
      if (more?.lines.length) send(more.lines);
      if (!st || FINISHED.has(st.state)) {
        const end: LogStreamEnd = { state: st?.state ?? 'unknown', failedReason: st?.failedReason };
        res.write(`event: end\ndata: ${JSON.stringify(end)}\n\n`);
        break;
      }
      await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
    }
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'log follow stopped');
    res.write(`event: error\ndata: ${JSON.stringify({ message: 'log stream interrupted' })}\n\n`);
  } finally {
    res.end();
  }
}

/** The caller of a route that needs a token (the onRequest hook refused any request without one). */
function tokenCaller(token: TokenEntry | undefined): Caller {
  if (!token) throw new XamalError('unauthorized', 'missing or wrong bearer token (Authorization: Bearer <token>)');
  return { kind: 'token', token };
}

export const buildRoutes: FastifyPluginAsyncZod = async (app) => {
  const builds = required(app.services, 'builds');
  const maxLog = app.settings.maxLogResponseBytes;
  const streams = streamLimit(app.settings.maxStreamsPerToken);
  const submitted = { 200: SubmitResultSchema, 202: SubmitResultSchema };
  app.post('/v1/builds', { config: { scope: 'build' }, schema: { body: BuildRequestSchema, response: submitted } }, async (req, reply) => {
    const r = await builds.submit(req.body, tokenCaller(req.farmToken));
    if (r.builds.length === 0) {
      throw new XamalError('unsupported', `no target can be built:\n${r.unresolved.map((u) => `${JSON.stringify(u.target)}: ${u.reasons.join('; ') || 'no builder image'}`).join('\n')}`);
    }
    return reply.code(r.builds.every((b) => b.status === 'done') && r.unresolved.length === 0 ? 200 : 202).send(r);
  });

  app.get('/v1/build-sets/:id', { schema: { params: BuildSetParamsSchema, response: { 200: BuildSetSchema } } }, async (req) =>
    found(await builds.buildSet(req.params.id), `no build set ${req.params.id}`),
  );

  app.get('/v1/builds', { schema: { querystring: BuildListQuerySchema, response: { 200: BuildListSchema } } }, async (req) => builds.list(req.query));

  app.get('/v1/builds/:id', { schema: { params: BuildIdParamsSchema, response: { 200: BuildStatusSchema } } }, async (req) =>
    found(await builds.status(req.params.id), `no build ${req.params.id}`),
  );

  app.delete('/v1/builds/:id', { config: { scope: 'build' }, schema: { params: BuildIdParamsSchema, response: { 200: CancelResultSchema } } }, async (req) => {
    const outcome = await builds.cancel(req.params.id, tokenCaller(req.farmToken));
    if (outcome === 'unknown') throw new XamalError('not_found', `no build ${req.params.id}`);
    return { id: req.params.id, outcome };
  });

  app.get('/v1/builds/:id/logs', { schema: { params: BuildIdParamsSchema, querystring: LogsQuerySchema } }, async (req, reply) => {
    const { id } = req.params;
    const start = req.query.start ?? 0;
    const first = found(await builds.logs(id, start), `no build ${id}`);
    if (req.query.follow === '1' || req.query.follow === 'true') {
      const close = streams.open(rateLimitKey(req));
      if (!close) {
        const who = req.farmToken ? `token ${req.farmToken.name}` : `client ${req.ip}`;
        const message = `${who} has ${streams.max} log streams open, the most one token may hold on this API process (XAMAL_API_MAX_STREAMS_PER_TOKEN); close one and retry`;
        return refuse(reply.header('retry-after', '5'), 429, 'too_many_streams', message);
      }
      reply.hijack();
      try {
        return await followLogs({ builds, id, start, first: first.lines, maxLog, req: req.raw, res: reply.raw, log: req.log });
      } finally {
        close();
      }
    }
    const { out } = linesWithin(first.lines, maxLog, maxLog, start);
    return reply.type('text/plain; charset=utf-8').send(out.map((l) => `${l}\n`).join(''));
  });
};
