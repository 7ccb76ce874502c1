import { join } from 'node:path';
import type { ServicesConfig } from './config.ts';
import { redisPassword } from './secrets.ts';

/** How clients reach the local services (the same for tests, scripts and the farm); makes the Redis password on first use. */
export interface ServiceEndpoints {
  redisUrl: string;
  dockerSocket: string;
  s3: { endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string; forcePathStyle: true };
  registry: string;
}

export function serviceEndpoints(c: ServicesConfig): ServiceEndpoints {
  return {
    // The password travels in the URL the farm's clients read from config (queue/connection.ts).
    redisUrl: `redis://:${redisPassword(c)}@127.0.0.1:${c.redisPort}`,
    dockerSocket: join(c.runDir, 'docker.sock'),
    // s3rver accepts any signature; these are its documented credentials.
    s3: {
      endpoint: `http://127.0.0.1:${c.s3Port}`,
      bucket: c.s3Bucket,
      region: 'us-east-1',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      forcePathStyle: true,
    },
    registry: `127.0.0.1:${c.registryPort}`,
  };
}
