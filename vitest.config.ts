import { defineConfig } from 'vitest/config';

const INTEGRATION = {
  environment: 'node' as const,
  globalSetup: ['testkit/global-setup.ts'],
  testTimeout: 120_000,
  hookTimeout: 300_000,
  fileParallelism: false,
};

/** Integration files that run on test hosts (the `hosts` project). */
const HOSTS = [
  'test/integration/deploy.int.test.ts',
  'test/integration/deployer-*.int.test.ts',
  'test/integration/testhosts.int.test.ts',
  'test/integration/target-matrix.int.test.ts',
];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      // Integration tests against the real services, in two projects, each one file at a time: the
      // farm's (builds, queue, store, engine faults) and the test hosts' (deployer, hosts, target
      // matrix), so either group can be run alone (`--project hosts`). Files of one project share no
      // state with the other's (own queue and key prefixes, own test labs, own fault-injected
      // instances); one setup serves both (testkit/global-setup.ts). On this 2-core machine vitest runs them
      // one after the other (one worker); with two workers they did not overlap either (measured).
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.int.test.ts'],
          exclude: HOSTS,
          ...INTEGRATION,
        },
      },
      {
        test: {
          name: 'hosts',
          include: HOSTS,
          ...INTEGRATION,
        },
      },
    ],
  },
});
