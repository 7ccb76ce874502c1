import { join } from 'node:path';
import { z } from 'zod';
import { parseOrThrow } from '../core/errors/index.ts';
import type { S3Settings } from './s3.ts';

const EnvSchema = z.object({
  XAMAL_S3_ENDPOINT: z.string().url('expected a URL like https://s3.eu-west-1.amazonaws.com').optional(),
  XAMAL_S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{2,62}$/, 'expected an S3 bucket name').optional(),
  XAMAL_S3_REGION: z.string().min(1).default('us-east-1'),
  XAMAL_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  XAMAL_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  XAMAL_S3_FORCE_PATH_STYLE: z.enum(['0', '1', 'true', 'false']).optional(),
  XAMAL_S3_PREFIX: z.string().regex(/^(?:[A-Za-z0-9._-]+\/)*$/, 'expected empty or a prefix ending in /').optional(),
  XAMAL_S3_TIMEOUT_MS: z.coerce.number({ message: 'expected milliseconds' }).int('expected whole milliseconds').min(100, 'expected at least 100 ms').max(3_600_000, 'expected at most an hour').optional(),
});

export type StoreConfig = { kind: 'local'; root: string } | ({ kind: 's3' } & S3Settings);

/** S3 when XAMAL_S3_BUCKET is set (with endpoint/credentials), else files under the state directory. */
export function storeConfig(stateDir: string, env: NodeJS.ProcessEnv = process.env): StoreConfig {
  const e = parseOrThrow(EnvSchema, env, 'invalid store settings in the environment');
  if (!e.XAMAL_S3_BUCKET) return { kind: 'local', root: join(stateDir, 'store') };
  return {
    kind: 's3',
    bucket: e.XAMAL_S3_BUCKET,
    region: e.XAMAL_S3_REGION,
    ...(e.XAMAL_S3_ENDPOINT ? { endpoint: e.XAMAL_S3_ENDPOINT } : {}),
    accessKeyId: e.XAMAL_S3_ACCESS_KEY_ID ?? '',
    secretAccessKey: e.XAMAL_S3_SECRET_ACCESS_KEY ?? '',
    forcePathStyle: e.XAMAL_S3_FORCE_PATH_STYLE === '1' || e.XAMAL_S3_FORCE_PATH_STYLE === 'true',
    ...(e.XAMAL_S3_PREFIX ? { prefix: e.XAMAL_S3_PREFIX } : {}),
    ...(e.XAMAL_S3_TIMEOUT_MS !== undefined ? { timeoutMs: e.XAMAL_S3_TIMEOUT_MS } : {}),
  };
}
