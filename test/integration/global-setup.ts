import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { ensurePackages, serviceEndpoints, servicesConfig, servicesDown, servicesUp, type ServiceEndpoints } from '../../core/services/index.ts';

/** Debian packages integration tests need besides the services (mix for the example app). */
const TEST_PACKAGES = ['elixir'];

declare module 'vitest' {
  export interface ProvidedContext {
    services: ServiceEndpoints;
    runId: string;
  }
}

/**
 * Brings the real services up once for the run (installing what is missing) and stops, at the end,
 * exactly those this run started — services a developer already had up stay up.
 */
export default async function setup(project: TestProject) {
  const config = servicesConfig();
  const say = (line: string) => process.stderr.write(`[services] ${line}\n`);
  await ensurePackages(TEST_PACKAGES, say);
  const up = await servicesUp(config, undefined, say);
  project.provide('services', serviceEndpoints(config));
  project.provide('runId', `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`);
  return async () => {
    if (up.started.length) await servicesDown(config, up.started, say);
  };
}
