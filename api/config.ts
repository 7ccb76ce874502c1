import { z } from 'zod';
import { parseOrThrow } from '../core/index.ts';
import type { GitUrlPolicy } from '../core/contracts/git-url.ts';
import { gitRemoteEnvFromFile, type GitRemoteEnv } from '../core/contracts/git-credentials.ts';
import { parseRetiredKeys } from '../core/signing-key-file.ts';
import { parseTokenEntries, type TokenEntry } from './auth.ts';
import type { DownloadSettings } from './downloads.ts';
import type { RateLimitSettings } from './rate-limit.ts';

const EnvSchema = z.object({
  XAMAL_FARM_TOKEN: z.string().min(16, 'expected at least 16 characters').optional(),
  XAMAL_FARM_HOST: z.string().min(1).default('127.0.0.1'),
  XAMAL_FARM_PORT: z.coerce.number().int().min(0).max(65535).default(7420),
  XAMAL_FARM_TOKENS: z.string().optional(),
  XAMAL_GITHUB_HOOKS_FILE: z.string().min(1).optional(),
  XAMAL_APPS_FILE: z.string().min(1).optional(),
  XAMAL_FARM_URL_SECRET: z.string().min(32, 'expected at least 32 characters (shared by every API process of the farm)').optional(),
  XAMAL_FARM_PUBLIC_URL: z.url({ protocol: /^https?$/, error: 'expected the http(s) URL servers reach the API at' }).optional(),
  XAMAL_DOWNLOAD_TTL: z.coerce.number().int().min(10, 'expected seconds (10–86400)').max(86_400, 'expected seconds (10–86400)').default(300),
  XAMAL_DOWNLOADS: z.enum(['presign', 'api'], { error: 'expected presign (S3 presigned URLs when the store can) or api (links the API serves)' }).default('presign'),
  XAMAL_API_RATE_LIMIT: z
    .string()
    .regex(/^(off|0|\d+\/(\d+)?(s|min|h))$/, 'expected requests per window and token, like 60/min, 600/h, 20/10s, or off')
    .default('60/min'),
  XAMAL_API_MAX_STREAMS_PER_TOKEN: z.coerce.number().int().min(1, 'expected a number of streams, at least 1').max(10_000).default(8),
  XAMAL_GIT_ALLOW_LOCAL: z.enum(['0', '1', 'true', 'false'], { error: 'expected 1 (build from file:// URLs and paths on the farm\'s disks) or 0' }).default('0'),
  XAMAL_GIT_ALLOW_HTTP: z.enum(['0', '1', 'true', 'false'], { error: 'expected 1 (fetch sources over unencrypted http:// and git://) or 0' }).default('0'),
  XAMAL_GIT_CREDENTIALS_FILE: z.string().min(1).optional(),
  XAMAL_CLI_PACKAGE: z.string().min(1).optional(),
  XAMAL_SIGNING_KEYS_RETIRED: z.string().max(16_384).optional(),
  XAMAL_GITHUB_DELIVERY_TTL: z.coerce
    .number()
    .int()
    .min(60, 'expected seconds (60–7776000)')
    .max(7_776_000, 'expected seconds (60–7776000)')
    .default(7 * 86_400),
  XAMAL_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface FarmConfig {
  /** Admin token from the environment; when absent the farm generates and stores one. */
  token: string | undefined;
  /** Scoped tokens (hashed) from XAMAL_FARM_TOKENS. */
  tokens: TokenEntry[];
  /** JSON file with per-repository webhook secrets and matrices (POST /v1/hooks/github). */
  githubHooksFile: string | undefined;
  /** How long a webhook delivery id is remembered, so a replay of it submits nothing (s, default 7 days). */
  githubDeliveryTtlSeconds: number;
  /** Which git URLs builds may name: https and ssh, plus file:// / paths and http:// / git:// when allowed. */
  gitUrls: GitUrlPolicy;
  gitRemoteEnv: GitRemoteEnv;
  /** JSON file registering each app to its repositories and the tokens allowed to build and cancel it (api/owners.ts); unset: open farm. */
  appsFile: string | undefined;
  host: string;
  port: number;
  logLevel: string;
  /** Download link settings; the secret is per process when XAMAL_FARM_URL_SECRET is unset. */
  downloads: Partial<DownloadSettings>;
  /** POST requests per token and window (XAMAL_API_RATE_LIMIT, default 60/min; max 0 = off). */
  rateLimit: Pick<RateLimitSettings, 'max' | 'windowMs'>;
  /** Log streams (`GET /v1/builds/:id/logs?follow=1`) one token may hold open at once per API process (XAMAL_API_MAX_STREAMS_PER_TOKEN, default 8). */
  maxStreamsPerToken: number;
  /** The npm pack tarball of xamal that `GET /v1/cli` serves to CI runners (XAMAL_CLI_PACKAGE). */
  cliPackagePath: string | undefined;
  /** Rotated-out public keys GET /v1/keys still lists (XAMAL_SIGNING_KEYS_RETIRED, comma-separated `ed25519:…`). */
  retiredKeys: string[];
}

const UNIT_MS = { s: 1000, min: 60_000, h: 3_600_000 } as const;

/** `60/min` → 60 per 60 000 ms; `20/10s` → 20 per 10 000 ms; `off` or `0` → max 0. */
export function parseRateLimit(text: string): Pick<RateLimitSettings, 'max' | 'windowMs'> {
  const m = /^(\d+)\/(\d+)?(s|min|h)$/.exec(text);
  if (!m) return { max: 0, windowMs: 60_000 };
  return { max: Number(m[1]), windowMs: Number(m[2] ?? 1) * UNIT_MS[m[3] as keyof typeof UNIT_MS] };
}

const on = (flag: string): boolean => flag === '1' || flag === 'true';

export function farmConfig(env: NodeJS.ProcessEnv = process.env): FarmConfig {
  const e = parseOrThrow(EnvSchema, env, 'invalid farm settings in the environment');
  return { token: e.XAMAL_FARM_TOKEN, tokens: parseTokenEntries(e.XAMAL_FARM_TOKENS ?? ''), githubHooksFile: e.XAMAL_GITHUB_HOOKS_FILE, appsFile: e.XAMAL_APPS_FILE, host: e.XAMAL_FARM_HOST,
    githubDeliveryTtlSeconds: e.XAMAL_GITHUB_DELIVERY_TTL,
    gitUrls: { allowLocal: on(e.XAMAL_GIT_ALLOW_LOCAL), allowHttp: on(e.XAMAL_GIT_ALLOW_HTTP) },
    /** The farm's own credentials for private repositories over https, per host (XAMAL_GIT_CREDENTIALS_FILE): `git ls-remote` uses them. */
    gitRemoteEnv: gitRemoteEnvFromFile(e.XAMAL_GIT_CREDENTIALS_FILE, on(e.XAMAL_GIT_ALLOW_HTTP)),
    port: e.XAMAL_FARM_PORT,
    logLevel: e.XAMAL_LOG_LEVEL,
    rateLimit: parseRateLimit(e.XAMAL_API_RATE_LIMIT),
    maxStreamsPerToken: e.XAMAL_API_MAX_STREAMS_PER_TOKEN,
    cliPackagePath: e.XAMAL_CLI_PACKAGE,
    retiredKeys: parseRetiredKeys(e.XAMAL_SIGNING_KEYS_RETIRED),
    downloads: {
      ttlSeconds: e.XAMAL_DOWNLOAD_TTL,
      mode: e.XAMAL_DOWNLOADS,
      ...(e.XAMAL_FARM_URL_SECRET ? { secret: e.XAMAL_FARM_URL_SECRET } : {}),
      ...(e.XAMAL_FARM_PUBLIC_URL ? { publicUrl: e.XAMAL_FARM_PUBLIC_URL.replace(/\/+$/, '') } : {}),
    },
  };
}
