import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { issuesFromZod, ValidationError, XamalError } from '../../core/index.ts';
import { required } from '../decorations.ts';
import { refuse } from '../errors.ts';
import { BuildRequestSchema, GitRefSchema, type BuildRequest } from '../schemas/builds.ts';
import { ErrorBodySchema } from '../schemas/errors.ts';
import {
  GithubDeliveryIdSchema,
  GithubDuplicateAnswerSchema,
  GithubEventAnswerSchema,
  GithubEventNameSchema,
  GithubEventPayloadSchema,
  GithubPingAnswerSchema,
  GithubRepositoryRefSchema,
  type GithubEventPayload,
  type GithubHooks,
} from '../schemas/github.ts';
import { memoryDeliveryLedger } from '../services/deliveries.ts';

// cli/commands/farm-up.ts reads the settings file through this module.
export { parseGithubHooks, type GithubHooks } from '../schemas/github.ts';

type Hook = GithubHooks['repos'][string];

function signatureOk(secret: string, raw: Buffer, header: unknown): boolean {
  const m = /^sha256=([0-9a-f]{64})$/.exec(typeof header === 'string' ? header : '');
  if (!m) return false;
  const want = createHmac('sha256', secret).update(raw).digest();
  return timingSafeEqual(want, Buffer.from(m[1]!, 'hex'));
}

function parseJson(raw: unknown): unknown {
  if (!Buffer.isBuffer(raw)) throw new XamalError('validation', 'body: expected application/json');
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new XamalError('validation', 'body: expected JSON');
  }
}

/** `value` as `schema` reads it, or a 400 naming the field (`where`) and what was expected. */
function checked<S extends z.ZodType>(schema: S, value: unknown, where: readonly string[], heading?: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new ValidationError(issuesFromZod(r.error, where), heading);
  return r.data;
}

/** A repository's hook, looked up among the configured ones only (never a prototype's `constructor`). */
function hookFor(hooks: ReadonlyMap<string, Hook>, payload: unknown): (Hook & { repository: string }) | undefined {
  const r = GithubRepositoryRefSchema.safeParse(payload);
  const hook = r.success ? hooks.get(r.data.repository.full_name) : undefined;
  return hook && r.success ? { ...hook, repository: r.data.repository.full_name } : undefined;
}

type Source = BuildRequest['source'];

/** What a release (published) or tag push builds; undefined for any other event (a deleted tag included). */
function sourceOf(event: string, p: GithubEventPayload, git: string): Source | undefined {
  if (event === 'release' && p.action === 'published') {
    return { git, ref: checked(GitRefSchema, p.release?.tag_name, ['release', 'tag_name']) };
  }
  if (event !== 'push' || !p.ref?.startsWith('refs/tags/') || p.deleted === true || /^0{40}$/.test(p.after ?? '')) return undefined;
  if (!/^[0-9a-f]{40}$/.test(p.after ?? '')) throw new ValidationError([{ path: 'after', message: 'expected the pushed 40-character commit SHA' }]);
  return { git, commit: p.after! };
}

function ignored(event: string, p: GithubEventPayload): string {
  return `event ${event} ${p.action ?? p.ref ?? ''}`.trim();
}

/**
 * `POST /v1/hooks/github`: a signed `release` (published) or tag `push` starts the build configured
 * for that repository. Unsigned or mis-signed deliveries, and those of repositories not configured,
 * are refused alike before anything else is read; a delivery id already taken (by any API process
 * of the farm, within XAMAL_GITHUB_DELIVERY_TTL) is answered 200 and submits nothing.
 */
export const githubRoutes: FastifyPluginAsyncZod = async (app) => {
  const builds = required(app.services, 'builds');
  const hooks = new Map(Object.entries(app.settings.githubHooks?.repos ?? {}));
  const deliveries = app.services.deliveries ?? memoryDeliveryLedger(app.settings.githubDeliveryTtlSeconds);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const schema = { response: { 200: GithubPingAnswerSchema.or(GithubDuplicateAnswerSchema), 202: GithubEventAnswerSchema, 400: ErrorBodySchema, 401: ErrorBodySchema } };
  app.post('/v1/hooks/github', { config: { public: true }, schema }, async (req, reply) => {
    const raw = req.body as Buffer;
    const payload = parseJson(raw);
    const hook = hookFor(hooks, payload);
    // Same answer for an unknown repository and a bad signature: nothing to learn by probing.
    if (!hook || !signatureOk(hook.secret, raw, req.headers['x-hub-signature-256'])) {
      return refuse(reply, 401, 'unauthorized', 'missing or wrong X-Hub-Signature-256 for this repository');
    }
    const delivery = checked(GithubDeliveryIdSchema, req.headers['x-github-delivery'], ['headers', 'x-github-delivery']);
    const event = checked(GithubEventNameSchema, req.headers['x-github-event'], ['headers', 'x-github-event']);
    if (!(await deliveries.claim(delivery))) {
      return { duplicate: delivery, message: `delivery ${delivery} was already handled; nothing submitted` };
    }
    try {
      if (event === 'ping') return { ok: true as const };
      const p = checked(GithubEventPayloadSchema, payload, []);
      const source = sourceOf(event, p, hook.git);
      if (!source) return reply.code(202).send({ ignored: ignored(event, p) });
      const request = checked(BuildRequestSchema, { app: hook.app, source, ...(hook.matrix ? { matrix: hook.matrix } : { targets: hook.targets }) }, [], 'the build this repository\'s webhook settings describe is invalid');
      return reply.code(202).send(await builds.submit(request, { kind: 'webhook', repository: hook.repository }));
    } catch (err) {
      // Not handled: a redelivery of it (same id) is taken again.
      await deliveries.release(delivery).catch(() => {});
      throw err;
    }
  });
};
