import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { XamalError } from '../../core/index.ts';
import { BuildIdParams, BuildRequestSchema, BuildSetParams, LogsQuery } from '../schemas/builds.ts';
import type { BuildService } from '../services/builds.ts';

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

const cutMarker = (max: number, next: number) => `[xamal] log response cut at ${max} bytes; the rest: ?start=${next}`;

export const buildRoutes =
  (builds: BuildService, opts: { maxLogResponseBytes?: number } = {}): FastifyPluginAsyncZod =>
  async (app) => {
    const maxLog = opts.maxLogResponseBytes ?? DEFAULT_MAX_LOG_RESPONSE_BYTES;
    app.post('/v1/builds', { config: { scope: 'build' }, schema: { body: BuildRequestSchema } }, async (req, reply) => {
      const r = await builds.submit(req.body);
      if (r.builds.length === 0) {
        throw new XamalError('unsupported', `no target can be built:\n${r.unresolved.map((u) => `${JSON.stringify(u.target)}: ${u.reasons.join('; ') || 'no builder image'}`).join('\n')}`);
      }
      return reply.code(r.builds.every((b) => b.status === 'done') && r.unresolved.length === 0 ? 200 : 202).send(r);
    });

    app.get('/v1/build-sets/:id', { schema: { params: BuildSetParams } }, async (req) => {
      const set = await builds.buildSet(req.params.id);
      if (!set) throw new XamalError('not_found', `no build set ${req.params.id}`);
      return set;
    });

    app.get('/v1/builds/:id', { schema: { params: BuildIdParams } }, async (req) => {
      const st = await builds.status(req.params.id);
      if (!st) throw new XamalError('not_found', `no build ${req.params.id}`);
      const { data: _data, ...rest } = st;
      return rest;
    });

    app.delete('/v1/builds/:id', { config: { scope: 'build' }, schema: { params: BuildIdParams } }, async (req) => {
      const outcome = await builds.cancel(req.params.id);
      if (outcome === 'unknown') throw new XamalError('not_found', `no build ${req.params.id}`);
      return { id: req.params.id, outcome };
    });

    app.get('/v1/builds/:id/logs', { schema: { params: BuildIdParams, querystring: LogsQuery } }, async (req, reply) => {
      const { id } = req.params;
      const first = await builds.logs(id, req.query.start ?? 0);
      if (!first) throw new XamalError('not_found', `no build ${id}`);
      const follow = req.query.follow === '1' || req.query.follow === 'true';
      const start = req.query.start ?? 0;
      if (!follow) {
        const { taken, cut } = takeWithin(first.lines, maxLog);
        const lines = cut ? [...taken, cutMarker(maxLog, start + taken.length)] : taken;
        return reply.type('text/plain; charset=utf-8').send(lines.map((l) => `${l}\n`).join(''));
      }

      // Server-Sent Events: every log line as it arrives, then an `end` event with the final state.
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      let closed = false;
      req.raw.on('close', () => (closed = true));
      // At most maxLog bytes per stream: past that, one marker line, then only the end event.
      let sent = 0;
      let cut = false;
      let next = start;
      const send = (lines: string[]) => {
        if (!cut) {
          const t = takeWithin(lines, maxLog - sent);
          sent += t.bytes;
          const out = t.cut ? [...t.taken, cutMarker(maxLog, next + t.taken.length)] : t.taken;
          cut = t.cut;
          for (const l of out) res.write(`data: ${l.replace(/\r?\n/g, '\ndata: ')}\n\n`);
        }
        next += lines.length;
      };
      send(first.lines);
      const deadline = Date.now() + FOLLOW_MAX_MS;
      try {
        while (!closed && Date.now() < deadline) {
          const st = await builds.status(id);
          const more = await builds.logs(id, next);
          if (more?.lines.length) send(more.lines);
          if (!st || FINISHED.has(st.state)) {
            res.write(`event: end\ndata: ${JSON.stringify({ state: st?.state ?? 'unknown', failedReason: st?.failedReason })}\n\n`);
            break;
          }
          await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
        }
      } catch (err) {
        req.log.warn({ err: (err as Error).message }, 'log follow stopped');
        res.write(`event: error\ndata: ${JSON.stringify({ message: 'log stream interrupted' })}\n\n`);
      } finally {
        res.end();
      }
    });
  };
