import { describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../core/storage/local.ts';

const stub: BuildService = {
  submit: async () => ({ buildSet: 's', builds: [], unresolved: [] }),
  status: async () => undefined,
  logs: async () => undefined,
  cancel: async () => 'unknown',
  buildSet: async () => undefined,
};

describe('the OpenAPI document', () => {
  it('is generated from the route schemas and lists every route with its methods', async () => {
    const app = await buildApp({ token: 'o'.repeat(32), logLevel: 'silent', githubHooks: { repos: {} }, services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-oa')), builds: stub } });
    try {
      const res = await app.inject({ url: '/v1/openapi.json' });
      expect(res.statusCode).toBe(200);
      const doc = res.json() as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> } }>> };
      expect(doc.openapi).toMatch(/^3\./);
      const expected: Record<string, string[]> = {
        '/healthz': ['get'],
        '/readyz': ['get'],
        '/v1/health': ['get'],
        '/v1/artifacts': ['get'],
        '/v1/artifacts/{app}/{version}/{tuple}': ['get'],
        '/v1/artifacts/{app}/{version}/{tuple}/download': ['get'],
        '/v1/downloads/{token}': ['get'],
        '/v1/resolve': ['post'],
        '/v1/builds': ['post'],
        '/v1/builds/{id}': ['get', 'delete'],
        '/v1/builds/{id}/logs': ['get'],
        '/v1/build-sets/{id}': ['get'],
        '/v1/sources': ['post'],
        '/v1/hooks/github': ['post'],
      };
      for (const [path, methods] of Object.entries(expected)) {
        expect(Object.keys(doc.paths[path] ?? {}).sort(), path).toEqual([...methods].sort());
      }
      expect(Object.keys(doc.paths).sort()).toEqual(Object.keys(expected).sort());
      const body = doc.paths['/v1/builds']!.post!.requestBody!.content['application/json']!.schema;
      expect(Object.keys(body.properties ?? {})).toEqual(expect.arrayContaining(['app', 'source', 'targets', 'matrix']));
    } finally {
      await app.close();
    }
  });
});
