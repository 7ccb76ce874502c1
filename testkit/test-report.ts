/** What a vitest JSON report says failed, a line each: the end of a long run's log is what CI shows. */
import { relative } from 'node:path';

/** The part of a vitest JSON report (`--reporter=json`) the suite reads. */
export interface VitestReport {
  numPassedTests?: number;
  numFailedTests?: number;
  numPendingTests?: number;
  numTotalTests?: number;
  numFailedTestSuites?: number;
  numPassedTestSuites?: number;
  numTotalTestSuites?: number;
  testResults?: { name: string; status?: string; message?: string; assertionResults?: { fullName: string; status: string; failureMessages?: string[] }[] }[];
}

/** `lane file > test: first line of the message` for each failed test or file (the end of a long run's log is what CI shows). */
export function failureLines(lane: string, r: VitestReport | undefined, root: string): string[] {
  const first = (m: string | undefined) => (m ?? '').split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 300) ?? '';
  return (r?.testResults ?? []).flatMap((file) => {
    const name = relative(root, file.name);
    // The stack's first frame in the test file itself: `<file>:<line>:<column>`.
    const at = (m: string | undefined) => {
      const rest = m?.split(`${file.name}:`)[1];
      const line = rest?.match(/^(\d+):\d+/)?.[1];
      return line ? ` (line ${line})` : '';
    };
    const tests = (file.assertionResults ?? [])
      .filter((a) => a.status === 'failed')
      .map((a) => `${lane} ${name} > ${a.fullName}: ${first(a.failureMessages?.[0])}${at(a.failureMessages?.[0])}`);
    return tests.length === 0 && file.status === 'failed' ? [`${lane} ${name}: ${first(file.message)}`] : tests;
  });
}
