import { z } from 'zod';
import { parseOrThrow } from '../core/index.ts';

const EnvSchema = z.object({
  XAMAL_DRAIN_MS: z.coerce
    .number()
    .int()
    .min(0, 'expected milliseconds, 0 or more')
    .max(3_600_000, 'expected milliseconds, at most 3600000 (1 h)')
    .default(30_000),
  XAMAL_BUILD_SECRETS_KEY: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex characters (32 bytes; e.g. `openssl rand -hex 32`)').optional(),
});

/** How a farm process stops. */
export interface ShutdownConfig {
  /**
   * After SIGTERM, how long builds in flight and open requests may take to finish (XAMAL_DRAIN_MS,
   * default 30 s). Then builds still running are cancelled (their jobs go back to the queue when
   * their lock expires) and the process exits, whatever state Redis, the store or the engine are in.
   */
  drainMs: number;
}

/**
 * The key build secrets are sealed with in jobs (XAMAL_BUILD_SECRETS_KEY): shared by a farm's API and
 * workers. Unset: a process serving both (`xamal farm up`) makes one of its own for its lifetime
 * (jobs left sealed with it fail with a clear error after a restart); an API alone refuses secrets.
 */
export function buildSecretsKey(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  const e = parseOrThrow(EnvSchema, env, 'invalid farm settings in the environment');
  return e.XAMAL_BUILD_SECRETS_KEY ? Buffer.from(e.XAMAL_BUILD_SECRETS_KEY, 'hex') : undefined;
}

export function shutdownConfig(env: NodeJS.ProcessEnv = process.env): ShutdownConfig {
  const e = parseOrThrow(EnvSchema, env, 'invalid farm settings in the environment');
  return { drainMs: e.XAMAL_DRAIN_MS };
}
