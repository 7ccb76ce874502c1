import { describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';
import type { FinishedBuild, QueueCounts } from '../../../queue/index.ts';

const TOKEN = 'm'.repeat(32);
const AUTH = { authorization: `Bearer ${TOKEN}` };
const counts = (c: Partial<QueueCounts>): QueueCounts => ({ waiting: 0, active: 0, delayed: 0, prioritized: 0, completed: 0, failed: 0, workers: 0, ...c });

describe('GET /metrics', () => {
  it('reports queue depth per platform, build durations, outcomes, cache hits and HTTP requests in Prometheus text; a finished job counts once', async () => {
    let finished: FinishedBuild[] = [
      { id: 'b1', arch: 'x86_64', outcome: 'completed', durationMs: 42_000, cached: false, finishedAt: 1 },
      { id: 'b2', arch: 'x86_64', outcome: 'completed', durationMs: 20, cached: true, finishedAt: 2 },
      { id: 'b3', arch: 'aarch64', outcome: 'failed', durationMs: 700_000, cached: undefined, finishedAt: 3 },
    ];
    const queues = {
      counts: async () => ({ x86_64: counts({ waiting: 3, active: 1, delayed: 2, workers: 2 }), aarch64: counts({ waiting: 5 }) }),
      recentlyFinished: async () => finished,
      boardAdapters: () => [],
    };
    const app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-metrics')), queues } });
    try {
      await app.inject({ url: '/healthz' });
      await app.inject({ url: '/v1/nowhere', headers: AUTH });
      const first = await app.inject({ url: '/metrics', headers: AUTH });
      expect(first.statusCode).toBe(200);
      expect(first.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      const m = first.body;
      expect(m).toContain('xamal_queue_jobs{arch="x86_64",state="waiting"} 3');
      expect(m).toContain('xamal_queue_jobs{arch="x86_64",state="delayed"} 2');
      expect(m).toContain('xamal_queue_jobs{arch="x86_64",state="active"} 1');
      expect(m).toContain('xamal_queue_jobs{arch="aarch64",state="waiting"} 5');
      expect(m).toContain('xamal_queue_workers{arch="x86_64"} 2');
      expect(m).toContain('xamal_build_duration_seconds_bucket{le="60",arch="x86_64",outcome="completed"} 2');
      expect(m).toContain('xamal_build_duration_seconds_bucket{le="30",arch="x86_64",outcome="completed"} 1');
      expect(m).toContain('xamal_build_duration_seconds_sum{arch="x86_64",outcome="completed"} 42.02');
      expect(m).toContain('xamal_build_duration_seconds_count{arch="aarch64",outcome="failed"} 1');
      expect(m).toContain('xamal_build_cache_total{arch="x86_64",result="hit"} 1');
      expect(m).toContain('xamal_build_cache_total{arch="x86_64",result="miss"} 1');
      expect(m).toContain('xamal_builds_finished_total{arch="aarch64",outcome="failed"} 1');
      expect(m).toContain('xamal_http_requests_total{method="GET",route="/healthz",status="200"} 1');
      expect(m).toContain('xamal_http_requests_total{method="GET",route="unmatched",status="404"} 1');
      expect(m).toContain('xamal_api_process_cpu_user_seconds_total');

      finished = [...finished, { id: 'b4', arch: 'x86_64', outcome: 'completed', durationMs: 5_000, cached: false, finishedAt: 4 }];
      const second = (await app.inject({ url: '/metrics', headers: AUTH })).body;
      expect(second).toContain('xamal_build_duration_seconds_count{arch="x86_64",outcome="completed"} 3');
      expect(second).toContain('xamal_builds_finished_total{arch="aarch64",outcome="failed"} 1');
      expect(second).toContain('xamal_build_cache_total{arch="x86_64",result="miss"} 2');
      expect(second).toContain('xamal_http_requests_total{method="GET",route="/metrics",status="200"} 1');
    } finally {
      await app.close();
    }
  });

  it('still answers with the HTTP series when the queues cannot be read', async () => {
    const queues = { counts: async () => Promise.reject(new Error('ECONNREFUSED')), recentlyFinished: async () => [], boardAdapters: () => [] };
    const app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-metrics')), queues } });
    try {
      const res = await app.inject({ url: '/metrics', headers: AUTH });
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('# TYPE xamal_http_requests_total counter');
    } finally {
      await app.close();
    }
  });
});
