import type { FastifyInstance } from 'fastify';
import swaggerUi from '@fastify/swagger-ui';
import { createBullBoard } from '@bull-board/api';
import { FastifyAdapter } from '@bull-board/fastify';

/** bull-board queue adapters (queue/inspector.ts `queueInspector().boardAdapters()`). */
export type BoardQueues = Parameters<typeof createBullBoard>[0]['queues'];

export const BOARD_PATH = '/admin/queues';
export const DOCS_PATH = '/docs';

/**
 * The build queues' dashboard (bull-board) at /admin/queues: every page, asset and board API call
 * needs the `admin` scope. Browsers can send the token as HTTP Basic auth (any user name, the token
 * as password): the API asks for it on a 401 under /admin. Absent without `app.services.queues`.
 */
export async function installBoard(app: FastifyInstance): Promise<void> {
  const queues = app.services.queues?.boardAdapters();
  if (!queues) return;
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, scope: 'admin' };
    });
    const serverAdapter = new FastifyAdapter();
    serverAdapter.setBasePath(BOARD_PATH);
    createBullBoard({ queues, serverAdapter, options: { uiConfig: { boardTitle: 'xamal farm' } } });
    await scope.register(serverAdapter.registerPlugin(), { prefix: BOARD_PATH });
  });
}

/** Swagger UI at /docs over the same generated document as /v1/openapi.json; public, like the document. */
export async function installDocs(app: FastifyInstance): Promise<void> {
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, public: true };
    });
    await scope.register(swaggerUi, { routePrefix: DOCS_PATH, uiConfig: { docExpansion: 'list', deepLinking: true } });
  });
}
