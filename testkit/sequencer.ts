import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files that wait for the suite's from-source builder (testkit/toolchains.ts). On a fresh machine the
 * suite starts while the OTP compile still runs; these go after the other files of their lane, so the
 * lane does its other work meanwhile instead of waiting first.
 */
export const WAIT_FOR_FROM_SOURCE_BUILDER = [
  'test/integration/farm/toolchain-image.int.test.ts',
  'test/integration/hosts/target-matrix.int.test.ts',
  'test/integration/hosts/deploy.int.test.ts',
  'test/integration/hosts/remove.int.test.ts',
];

/** vitest's order (projects by name, then failed, longest or largest first), with the files above last. */
export class FromSourceBuilderLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const waits = (f: TestSpecification) => WAIT_FOR_FROM_SOURCE_BUILDER.some((p) => f.moduleId.endsWith(`/${p}`));
    return [...sorted.filter((f) => !waits(f)), ...sorted.filter(waits)];
  }
}
