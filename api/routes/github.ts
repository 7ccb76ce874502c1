import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { XamalError } from '../../core/index.ts';
import { required } from '../decorations.ts';
import { refuse } from '../errors.ts';
import { BuildRequestSchema } from '../schemas/builds.ts';
import { ErrorBodySchema } from '../schemas/errors.ts';
import { GithubEventAnswerSchema, GithubPingAnswerSchema, type GithubHooks } from '../schemas/github.ts';

// cli/commands/farm-up.ts reads the settings file through this module.
export { parseGithubHooks, type GithubHooks } from '../schemas/github.ts';

type Payload = { repository?: { full_name?: string }; action?: string; ref?: string; after?: string; release?: { tag_name?: string } };

function signatureOk(secret: string, raw: Buffer, header: string | undefined): boolean {
  const m = /^sha256=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const want = createHmac('sha256', secret).update(raw).digest();
  return timingSafeEqual(want, Buffer.from(m[1]!, 'hex'));
}

function parsePayload(raw: unknown): Payload {
  if (!Buffer.isBuffer(raw)) throw new XamalError('validation', 'body: expected application/json');
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new XamalError('validation', 'body: expected JSON');
  }
}

/** What a release (published) or tag push builds; undefined for any other event. */
function sourceOf(event: unknown, payload: Payload, git: string): { git: string; ref: string } | { git: string; commit: string } | undefined {
  if (event === 'release' && payload.action === 'published' && payload.release?.tag_name) return { git, ref: payload.release.tag_name };
  if (event === 'push' && payload.ref?.startsWith('refs/tags/') && /^[0-9a-f]{40}$/.test(payload.after ?? '')) return { git, commit: payload.after! };
  return undefined;
}

/**
 * `POST /v1/hooks/github`: a signed `release` (published) or tag `push` starts the build configured
 * for that repository. Unsigned or mis-signed deliveries are refused before anything is parsed further.
 */
export const githubRoutes: FastifyPluginAsyncZod = async (app) => {
  const builds = required(app.services, 'builds');
  const hooks: GithubHooks = app.settings.githubHooks ?? { repos: {} };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const schema = { response: { 200: GithubPingAnswerSchema, 202: GithubEventAnswerSchema, 401: ErrorBodySchema } };
  app.post('/v1/hooks/github', { config: { public: true }, schema }, async (req, reply) => {
    const raw = req.body as Buffer;
    const payload = parsePayload(raw);
    const repo = payload.repository?.full_name;
    const hook = repo ? hooks.repos[repo] : undefined;
    // Same answer for an unknown repository and a bad signature: nothing to learn by probing.
    if (!hook || !signatureOk(hook.secret, raw, req.headers['x-hub-signature-256'] as string | undefined)) {
      return refuse(reply, 401, 'unauthorized', 'missing or wrong X-Hub-Signature-256 for this repository');
    }
    const event = req.headers['x-github-event'];
    if (event === 'ping') return { ok: true as const };
    const source = sourceOf(event, payload, hook.git);
    if (!source) return reply.code(202).send({ ignored: `event ${String(event)} ${payload.action ?? payload.ref ?? ''}`.trim() });
    const request = BuildRequestSchema.parse({ app: hook.app, source, ...(hook.matrix ? { matrix: hook.matrix } : { targets: hook.targets }) });
    return reply.code(202).send(await builds.submit(request, { kind: 'webhook', repository: repo! }));
  });
};
