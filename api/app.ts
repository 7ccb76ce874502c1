import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { randomBytes } from 'node:crypto';
import type { DownloadSettings } from './downloads.ts';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { createLogger } from '../core/index.ts';
import { adminEntry, authenticate, type TokenEntry } from './auth.ts';
import type { AppServices, AppSettings } from './decorations.ts';
import { installErrorHandler, refuse } from './errors.ts';
import { installRateLimit, type RateLimitSettings } from './rate-limit.ts';
import { DEFAULT_MAX_STREAMS_PER_TOKEN } from './stream-limit.ts';
import { installMetrics } from './metrics.ts';
import { BOARD_PATH, installBoard, installDocs } from './board.ts';
import { healthRoutes } from './routes/health.ts';
import { artifactRoutes } from './routes/artifacts.ts';
import { buildRoutes, DEFAULT_MAX_LOG_RESPONSE_BYTES } from './routes/builds.ts';
import { resolveRoutes } from './routes/resolve.ts';
import { buildsPageRoutes } from './routes/builds-page.ts';
import { MAX_SOURCE_BYTES, sourceRoutes } from './routes/sources.ts';
import { githubRoutes } from './routes/github.ts';
import { cliPackageRoutes } from './routes/cli-package.ts';
import { keyRoutes, publishedKeys } from './routes/keys.ts';
import type { ServedCliPackage } from './cli-package.ts';
import type { GithubHooks } from './schemas/github.ts';

export type { AppServices } from './decorations.ts';

/** Webhook delivery ids are remembered a week by default (XAMAL_GITHUB_DELIVERY_TTL). */
export const DEFAULT_DELIVERY_TTL_SECONDS = 7 * 86_400;

export interface AppOptions {
  /** The admin token: every scope. */
  token: string;
  /** More tokens, each with its scopes (XAMAL_FARM_TOKENS). */
  tokens?: readonly TokenEntry[];
  services: AppServices;
  logLevel?: string;
  /** Repositories whose releases start builds (POST /v1/hooks/github). */
  githubHooks?: GithubHooks;
  /** How long a webhook delivery id is remembered when no shared ledger is given (s, default 7 days). */
  githubDeliveryTtlSeconds?: number;
  /** Download links (default: presigned when the store can, 5 minutes, a per-process secret). */
  downloads?: Partial<DownloadSettings>;
  /** POST requests per token and window (the farm passes XAMAL_API_RATE_LIMIT, default 60/min); absent = no limit. */
  rateLimit?: RateLimitSettings;
  /** Most bytes one log response or stream carries (default 8 MiB; then a marker naming `?start=`). */
  maxLogResponseBytes?: number;
  /** Largest source archive POST /v1/sources takes (default 200 MiB). */
  maxSourceBytes?: number;
  /** Log streams one token may hold open at once, counted per API process (XAMAL_API_MAX_STREAMS_PER_TOKEN, default 8). */
  maxStreamsPerToken?: number;
  /** The xamal package `GET /v1/cli` serves (XAMAL_CLI_PACKAGE); absent: those routes answer 404. */
  cliPackage?: ServedCliPackage;
  /** The farm's public signing keys GET /v1/keys lists: the current one and rotated-out ones (`ed25519:…`). */
  signingKeys?: { current?: string; retired?: readonly string[] };
}


/**
 * One access line per request, when it completes (fastify writes two: received and completed).
 * Answers below 400 go at the route's `accessLog` level; errors as fastify logs them.
 */
class AccessLog extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(error: Error | null | undefined, req: FastifyRequest, reply: FastifyReply): void {
    const line = { req: { method: req.method, url: req.url }, res: { statusCode: reply.statusCode }, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log[reply.statusCode < 400 ? (req.routeOptions.config?.accessLog ?? 'info') : 'info'](line, 'request');
  }
}

/** The farm API as an app (no listen): tests use `app.inject()`, server.ts listens. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // A download link's path is its grant: logged as /v1/downloads/[REDACTED].
    loggerInstance: createLogger({ level: opts.logLevel ?? 'info', name: 'api', redactPatterns: [[/(\/v1\/downloads\/)[^\s"?]+/g, '$1[REDACTED]']] }) as FastifyBaseLogger,
    bodyLimit: 1 << 20,
    logController: new AccessLog(),
    // Signed download links carry their grant in the path.
    routerOptions: { maxParamLength: 2048 },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate('services', opts.services);
  app.decorate('settings', {
    downloads: { secret: randomBytes(32).toString('hex'), ttlSeconds: 300, mode: 'presign', ...opts.downloads } satisfies DownloadSettings,
    maxLogResponseBytes: opts.maxLogResponseBytes || DEFAULT_MAX_LOG_RESPONSE_BYTES,
    maxSourceBytes: opts.maxSourceBytes ?? MAX_SOURCE_BYTES,
    maxStreamsPerToken: opts.maxStreamsPerToken ?? DEFAULT_MAX_STREAMS_PER_TOKEN,
    githubDeliveryTtlSeconds: opts.githubDeliveryTtlSeconds ?? DEFAULT_DELIVERY_TTL_SECONDS,
    ...(opts.githubHooks ? { githubHooks: opts.githubHooks } : {}),
    ...(opts.cliPackage ? { cliPackage: opts.cliPackage } : {}),
    publicKeys: publishedKeys(opts.signingKeys?.current, opts.signingKeys?.retired ?? []),
  } satisfies AppSettings);
  installErrorHandler(app);
  // OpenAPI generated from the same zod schemas that validate requests; served at /v1/openapi.json.
  await app.register(swagger, {
    openapi: {
      info: { title: 'xamal farm API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  const entries = [adminEntry(opts.token), ...(opts.tokens ?? [])];
  app.decorateRequest('farmToken', undefined);
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public) return;
    const entry = authenticate(req.headers.authorization, entries);
    req.farmToken = entry;
    if (!entry) {
      // Browsers get a login prompt for the board (token as the password).
      if (req.url.startsWith(BOARD_PATH)) reply.header('www-authenticate', 'Basic realm="xamal farm admin", charset="UTF-8"');
      return refuse(reply, 401, 'unauthorized', 'missing or wrong bearer token (Authorization: Bearer <token>)');
    }
    const needed = req.routeOptions.config?.scope ?? 'read';
    if (!entry.scopes.includes(needed) && !entry.scopes.includes('admin')) {
      return refuse(reply, 403, 'forbidden', `token ${entry.name} lacks the ${needed} scope`);
    }
  });
  if (opts.rateLimit) await installRateLimit(app, opts.rateLimit);
  installMetrics(app);
  await installDocs(app);
  await installBoard(app);
  app.get('/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  // Every route plugin reads app.services and app.settings; those needing an optional service exist only with it.
  await app.register(healthRoutes);
  await app.register(artifactRoutes);
  await app.register(keyRoutes);
  await app.register(resolveRoutes);
  await app.register(cliPackageRoutes);
  if (opts.services.builds) await app.register(buildRoutes);
  if (opts.services.builds) await app.register(buildsPageRoutes);
  if (opts.services.builds && opts.githubHooks) await app.register(githubRoutes);
  if (opts.services.sourceStore) await app.register(sourceRoutes);
  return app;
}
