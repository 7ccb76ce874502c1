import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { localStore } from '../../../store/local.ts';

const stub: BuildService = {
  submit: async () => ({ buildSet: 's', builds: [], unresolved: [] }),
  status: async () => undefined,
  logs: async () => undefined,
  cancel: async () => 'unknown',
  buildSet: async () => undefined,
  list: async () => ({ builds: [] }),
};

const queues = { counts: async () => ({}), recentlyFinished: async () => [], boardAdapters: () => [] };

describe('the OpenAPI document', () => {
  it('is generated from the route schemas, is a valid OpenAPI document, and lists every route with its methods; /docs serves the same document', async () => {
    const app = await buildApp({ token: 'o'.repeat(32), logLevel: 'silent', githubHooks: { repos: {} }, services: { health: healthService({}), ...storeBackedServices(localStore('/nonexistent-xamal-oa')), builds: stub, queues } });
    try {
      const res = await app.inject({ url: '/v1/openapi.json' });
      expect(res.statusCode).toBe(200);
      const validator = new Validator();
      const verdict = await validator.validate(res.json());
      expect(verdict.errors ?? []).toEqual([]);
      expect(verdict.valid).toBe(true);
      expect(validator.version).toMatch(/^3\./);
      const doc = res.json() as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> } }>> };
      expect(doc.openapi).toMatch(/^3\./);
      const expected: Record<string, string[]> = {
        '/healthz': ['get'],
        '/readyz': ['get'],
        '/v1/health': ['get'],
        '/v1/artifacts': ['get'],
        '/v1/artifacts/{app}/{version}/{tuple}': ['get'],
        '/v1/artifacts/{app}/{version}/{tuple}/download': ['get'],
        '/v1/artifacts/{app}/{version}/{tuple}/link': ['get'],
        '/v1/artifacts/{app}/{version}/{tuple}/attestations': ['get'],
        '/v1/artifacts/{app}/{version}/{tuple}/provenance': ['get'],
        '/v1/artifacts/{app}/{version}/{tuple}/sbom': ['get'],
        '/v1/keys': ['get'],
        '/v1/downloads/{token}': ['get'],
        '/v1/resolve': ['post'],
        '/v1/builds': ['get', 'post'],
        '/v1/builds/{id}': ['get', 'delete'],
        '/v1/builds/{id}/logs': ['get'],
        '/v1/build-sets/{id}': ['get'],
        '/v1/sources': ['post'],
        '/v1/hooks/github': ['post'],
        '/v1/cli': ['get'],
        '/v1/cli/{file}': ['get'],
        '/metrics': ['get'],
      };
      for (const [path, methods] of Object.entries(expected)) {
        expect(Object.keys(doc.paths[path] ?? {}).sort(), path).toEqual([...methods].sort());
      }
      expect(Object.keys(doc.paths).sort()).toEqual(Object.keys(expected).sort());
      const body = doc.paths['/v1/builds']!.post!.requestBody!.content['application/json']!.schema;
      expect(Object.keys(body.properties ?? {})).toEqual(expect.arrayContaining(['app', 'source', 'targets', 'matrix']));

      // The UI (/docs) and the board (/admin/queues) are pages, not API: they stay out of the document.
      const ui = await app.inject({ url: '/docs' });
      expect(ui.statusCode).toBe(200);
      expect(ui.headers['content-type']).toMatch(/text\/html/);
      expect((await app.inject({ url: '/docs/json' })).json()).toEqual(res.json());
    } finally {
      await app.close();
    }
  });
});
