import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FinishedBuild, QueueCounts } from '../queue/index.ts';

/** What /metrics reads from the build queues (queue/inspector.ts `queueInspector`). */
export interface MetricsSource {
  counts(): Promise<Record<string, QueueCounts>>;
  recentlyFinished(limit?: number): Promise<FinishedBuild[]>;
}

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;
/** Finished jobs read from each queue per scrape; faster turnover between scrapes is not seen. */
const RECENT_PER_SCRAPE = 200;
/** Job IDs already observed (so a job counts once per process), oldest forgotten first. */
const SEEN_MAX = 20_000;
const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

/**
 * Prometheus metrics (prom-client, one registry per app): HTTP requests by route and status, the
 * platform queues' job counts and workers, and — from the jobs the queues still hold — build
 * durations, outcomes and artifact-cache hits. Queue-derived series are read from the shared Redis,
 * so every API process reports the same builds: aggregate them with `max`, not `sum`.
 * `GET /metrics` needs the `read` scope (give Prometheus a read-only token). The queues are
 * `app.services.queues`; without them only the HTTP and process series answer.
 */
export function installMetrics(app: FastifyInstance): Registry {
  const source = app.services.queues;
  const register = new Registry();
  collectDefaultMetrics({ register, prefix: 'xamal_api_' });
  const requests = new Counter({ name: 'xamal_http_requests_total', help: 'HTTP requests answered, by method, route pattern and status', labelNames: ['method', 'route', 'status'] as const, registers: [register] });
  const latency = new Histogram({ name: 'xamal_http_request_duration_seconds', help: 'Time to answer an HTTP request (SSE streams: until the stream ends)', labelNames: ['method', 'route'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [register] });
  const jobs = new Gauge({ name: 'xamal_queue_jobs', help: 'Jobs in each platform build queue, by state', labelNames: ['arch', 'state'] as const, registers: [register] });
  const workers = new Gauge({ name: 'xamal_queue_workers', help: 'Workers connected to each platform build queue', labelNames: ['arch'] as const, registers: [register] });
  const durations = new Histogram({ name: 'xamal_build_duration_seconds', help: 'Build job duration (worker pick-up to end of its last attempt), by outcome', labelNames: ['arch', 'outcome'] as const, buckets: DURATION_BUCKETS, registers: [register] });
  const finished = new Counter({ name: 'xamal_builds_finished_total', help: 'Build jobs seen finished, by outcome', labelNames: ['arch', 'outcome'] as const, registers: [register] });
  const cache = new Counter({ name: 'xamal_build_cache_total', help: 'Completed builds whose artifact was already stored (hit) or was built (miss)', labelNames: ['arch', 'result'] as const, registers: [register] });
  const seen = new Set<string>();

  const observeQueues = async (s: MetricsSource) => {
    for (const [arch, c] of Object.entries(await s.counts())) {
      for (const state of QUEUE_STATES) jobs.set({ arch, state }, c[state]);
      workers.set({ arch }, c.workers);
    }
    for (const b of await s.recentlyFinished(RECENT_PER_SCRAPE)) {
      const key = `${b.id}:${b.finishedAt}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (seen.size > SEEN_MAX) seen.delete(seen.values().next().value!);
      finished.inc({ arch: b.arch, outcome: b.outcome });
      if (b.durationMs !== undefined) durations.observe({ arch: b.arch, outcome: b.outcome }, b.durationMs / 1000);
      if (b.outcome === 'completed' && b.cached !== undefined) cache.inc({ arch: b.arch, result: b.cached ? 'hit' : 'miss' });
    }
  };

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    latency.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  app.get(
    '/metrics',
    {
      config: { scope: 'read' },
      schema: { summary: 'Prometheus metrics (text exposition format); needs the read scope', tags: ['operations'] },
    },
    async (req, reply) => {
      if (source) {
        try {
          await observeQueues(source);
        } catch (err) {
          // The HTTP series still answer; the queue series keep their last values.
          req.log.warn({ err: (err as Error).message }, 'metrics: build queues unreadable');
        }
      }
      return reply.type(register.contentType).send(await register.metrics());
    },
  );
  return register;
}
