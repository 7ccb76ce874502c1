import { describe, expect, it } from 'vitest';
import { failureLines } from '../../../testkit/test-report.ts';

describe('failure lines from a vitest JSON report', () => {
  const root = '/ck';
  it('names each failed test with its lane, file, first message line and the line in the test file', () => {
    const lines = failureLines(
      'unit',
      {
        testResults: [
          {
            name: '/ck/test/unit/a.test.ts',
            status: 'failed',
            assertionResults: [
              { fullName: 'a passes', status: 'passed' },
              { fullName: 'a fails', status: 'failed', failureMessages: ['\nAssertionError: expected false to be true\n    at /ck/node_modules/x.js:1:2\n    at /ck/test/unit/a.test.ts:87:81\n'] },
            ],
          },
          { name: '/ck/test/unit/b.test.ts', status: 'passed', assertionResults: [{ fullName: 'b', status: 'passed' }] },
        ],
      },
      root,
    );
    expect(lines).toEqual(['unit test/unit/a.test.ts > a fails: AssertionError: expected false to be true (line 87)']);
  });

  it('names a file that failed without a failed test (an import or hook error) by its message', () => {
    const lines = failureLines('farm', { testResults: [{ name: '/ck/test/x.int.test.ts', status: 'failed', message: 'Error: Cannot find module y', assertionResults: [] }] }, root);
    expect(lines).toEqual(['farm test/x.int.test.ts: Error: Cannot find module y']);
  });

  it('has nothing to say of a missing or passing report', () => {
    expect(failureLines('unit', undefined, root)).toEqual([]);
    expect(failureLines('unit', { testResults: [{ name: '/ck/a.test.ts', status: 'passed', assertionResults: [{ fullName: 'a', status: 'passed' }] }] }, root)).toEqual([]);
  });
});
