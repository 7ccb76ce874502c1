import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../../localservices/config.ts';
import { WAIT_FOR_FROM_SOURCE_BUILDER } from '../../../testkit/sequencer.ts';

describe('the suite runs files that wait for the from-source builder last in their lane', () => {
  it('lists exactly the integration files that wait for it (prepareTestToolchains, buildFromSourceArtifacts)', () => {
    const dir = join(PROJECT_ROOT, 'test/integration');
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.int.test.ts')).map((f) => `test/integration/${f}`);
    const waiting = files.filter((f) => /\b(prepareTestToolchains|buildFromSourceArtifacts)\(/.test(readFileSync(join(PROJECT_ROOT, f), 'utf8')));
    expect([...WAIT_FOR_FROM_SOURCE_BUILDER].sort()).toEqual(waiting.sort());
  });
});
