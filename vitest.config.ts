import { defineConfig } from 'vitest/config';
import { FromSourceBuilderLast } from './testkit/sequencer.ts';

/**
 * Integration tests against the real services: one project per folder of test/integration/, each
 * one file at a time. `farm` (builds, queue, store, images, hostile builds), `faults` (the farm
 * under faults: killed workers, Redis, dockerd and store outages, limits, shutdown) and `hosts`
 * (test hosts: deployer, target matrix), so any group can be run alone (`--project hosts`). Files
 * share no state with each other (own queue and key prefixes, own test labs, own fault-injected
 * instances); the suite runs `hosts` beside `farm` + `faults` (testkit/suite.ts); one setup serves
 * all (testkit/global-setup.ts, refcounted).
 */
const integration = (name: 'farm' | 'faults' | 'hosts') => ({
  test: {
    name,
    include: [`test/integration/${name}/**/*.int.test.ts`],
    environment: 'node' as const,
    globalSetup: ['testkit/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    // One process per lane imports the modules once for all its files, as the unit project does (each
    // file re-imported them: ~30 s of CPU per lane). Integration tests stub no env and mock no module.
    isolate: false,
    // OTP and Elixir sources from Debian's archive (the lab reaches it; GitHub, the production default, it does not).
    env: { XAMAL_TOOLCHAIN_PREFER: 'debian' },
  },
});

export default defineConfig({
  test: {
    // Files that wait for the from-source builder run last in their lane (testkit/sequencer.ts).
    sequence: { sequencer: FromSourceBuilderLast },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // The suite runs unit tests beside the hosts project's BEAM boots (testkit/suite.ts): a
          // property test that takes 1 s alone took over 5 s there.
          testTimeout: 30_000,
          // Some set-ups start real programs (an sshd for the git relay's tests): on that busy machine
          // one went past vitest's 10 s default for hooks.
          hookTimeout: 60_000,
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
      integration('faults'),
      integration('hosts'),
    ],
  },
});
