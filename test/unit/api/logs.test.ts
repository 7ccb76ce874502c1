import { describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';
import type { BuildStatus } from '../../../api/schemas/builds.ts';

const TOKEN = 'l'.repeat(32);
const B = `b${'0'.repeat(32)}`;
const LINES = Array.from({ length: 1000 }, (_, i) => `line ${i} ${'y'.repeat(90)}`);

const done: BuildStatus = { id: B, arch: 'x86_64', state: 'completed', phase: 'done', attemptsMade: 1, createdAt: 0, startedAt: 0, finishedAt: 0 };
const builds: BuildService = {
  submit: async () => ({ buildSet: 's', builds: [], unresolved: [] }),
  status: async () => done,
  logs: async (_id, start = 0) => ({ lines: LINES.slice(start), count: LINES.length }),
  cancel: async () => 'unknown',
  buildSet: async () => undefined,
  list: async () => ({ builds: [] }),
};

describe('the build log route', () => {
  it('answers at most its byte budget, then a marker saying where the rest starts; following that start gets the rest', async () => {
    const max = 10_000;
    const app = await buildApp({ token: TOKEN, logLevel: 'silent', maxLogResponseBytes: max, services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-logs')), builds } });
    try {
      const get = (q: string) => app.inject({ url: `/v1/builds/${B}/logs${q}`, headers: { authorization: `Bearer ${TOKEN}` } });
      const first = await get('');
      expect(first.statusCode).toBe(200);
      const lines = first.body.trimEnd().split('\n');
      const marker = lines.at(-1)!;
      expect(marker).toMatch(/^\[xamal\] log response cut at 10000 bytes; the rest: \?start=(\d+)$/);
      expect(Buffer.byteLength(first.body)).toBeLessThanOrEqual(max + marker.length + 1);
      const next = Number(/start=(\d+)/.exec(marker)![1]);
      expect(lines.slice(0, -1)).toEqual(LINES.slice(0, next));

      const rest = await get(`?start=${next}`);
      expect(rest.body.split('\n')[0]).toBe(LINES[next]);

      const sse = await get('?follow=1');
      expect(sse.headers['content-type']).toBe('text/event-stream');
      expect(Buffer.byteLength(sse.body)).toBeLessThan(max + 100 * 2 * 6 + 300);
      expect(sse.body).toContain(`data: [xamal] log response cut at 10000 bytes; the rest: ?start=${next}`);
      expect(sse.body).not.toContain(LINES.at(-1));
      expect(sse.body).toMatch(/event: end\ndata: \{"state":"completed"\}/);
    } finally {
      await app.close();
    }
  });
});
