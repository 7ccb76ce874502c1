import { defineConfig } from 'vitest/config';

/**
 * Integration tests against the real services: one project per folder of test/integration/, each
 * one file at a time. `farm` (builds, queue, store, engine faults) and `hosts` (test hosts:
 * deployer, target matrix), so either group can be run alone (`--project hosts`). Files of one
 * project share no state with the other's (own queue and key prefixes, own test labs, own
 * fault-injected instances); one setup serves both (testkit/global-setup.ts, refcounted). On this
 * 2-core machine vitest runs them one after the other (one worker); with two workers they did not
 * overlap either (measured).
 */
const integration = (name: 'farm' | 'hosts') => ({
  test: {
    name,
    include: [`test/integration/${name}/**/*.int.test.ts`],
    environment: 'node' as const,
    globalSetup: ['testkit/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    // OTP and Elixir sources from Debian's archive (the lab reaches it; GitHub, the production default, it does not).
    env: { XAMAL_TOOLCHAIN_PREFER: 'debian' },
  },
});

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // The suite runs unit tests beside the hosts project's BEAM boots (testkit/suite.ts): a
          // property test that takes 1 s alone took over 5 s there.
          testTimeout: 30_000,
          // Unit files share each worker's module cache: 992 tests in 20 s instead of 64 s (most of
          // it was importing the same modules per file). Tests that change the process (cwd, env)
          // restore it; unstubEnvs/restoreMocks make sure of the rest.
          isolate: false,
          unstubEnvs: true,
          unstubGlobals: true,
          restoreMocks: true,
        },
      },
      integration('farm'),
      integration('hosts'),
    ],
  },
});
