import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { issuesFromZod, ValidationError, XamalError } from '../../core/index.ts';
import { BuildRequestSchema, MatrixSchema } from '../schemas/builds.ts';
import type { BuildService } from '../services/builds.ts';

/** Per-repository webhook settings: the shared secret and what to build on a release or tag push. */
export const GithubHookSchema = z
  .object({
    secret: z.string().min(16, 'expected a webhook secret of at least 16 characters'),
    app: z.string(),
    git: z.string(),
    matrix: MatrixSchema.optional(),
    targets: z.array(z.unknown()).optional(),
  })
  .strict();
export const GithubHooksSchema = z.object({ repos: z.record(z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected owner/name'), GithubHookSchema) }).strict();
export type GithubHooks = z.output<typeof GithubHooksSchema>;

export function parseGithubHooks(json: unknown): GithubHooks {
  const r = GithubHooksSchema.safeParse(json);
  if (!r.success) throw new ValidationError(issuesFromZod(r.error), 'invalid GitHub webhook settings');
  return r.data;
}

function signatureOk(secret: string, raw: Buffer, header: string | undefined): boolean {
  const m = /^sha256=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const want = createHmac('sha256', secret).update(raw).digest();
  return timingSafeEqual(want, Buffer.from(m[1]!, 'hex'));
}

/**
 * `POST /v1/hooks/github`: a signed `release` (published) or tag `push` starts the build configured
 * for that repository. Unsigned or mis-signed deliveries are refused before anything is parsed further.
 */
export const githubRoutes =
  (hooks: GithubHooks, builds: BuildService): FastifyPluginAsync =>
  async (app) => {
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    app.post('/v1/hooks/github', { config: { public: true } }, async (req, reply) => {
      const raw = req.body as Buffer;
      if (!Buffer.isBuffer(raw)) throw new XamalError('validation', 'body: expected application/json');
      let payload: { repository?: { full_name?: string }; action?: string; ref?: string; after?: string; release?: { tag_name?: string } };
      try {
        payload = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new XamalError('validation', 'body: expected JSON');
      }
      const repo = payload.repository?.full_name;
      const hook = repo ? hooks.repos[repo] : undefined;
      // Same answer for an unknown repository and a bad signature: nothing to learn by probing.
      if (!hook || !signatureOk(hook.secret, raw, req.headers['x-hub-signature-256'] as string | undefined)) {
        return reply.code(401).send({ statusCode: 401, error: 'unauthorized', message: 'missing or wrong X-Hub-Signature-256 for this repository' });
      }
      const event = req.headers['x-github-event'];
      let source: { git: string; ref: string } | { git: string; commit: string } | undefined;
      if (event === 'ping') return { ok: true };
      if (event === 'release' && payload.action === 'published' && payload.release?.tag_name) source = { git: hook.git, ref: payload.release.tag_name };
      if (event === 'push' && payload.ref?.startsWith('refs/tags/') && /^[0-9a-f]{40}$/.test(payload.after ?? '')) source = { git: hook.git, commit: payload.after! };
      if (!source) return reply.code(202).send({ ignored: `event ${String(event)} ${payload.action ?? payload.ref ?? ''}`.trim() });
      const request = BuildRequestSchema.parse({ app: hook.app, source, ...(hook.matrix ? { matrix: hook.matrix } : { targets: hook.targets }) });
      return reply.code(202).send(await builds.submit(request));
    });
  };
