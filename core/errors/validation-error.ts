import { formatIssues, type Issue } from './issue.ts';
import { XamalError } from './xamal-error.ts';

/** Bad input: every problem found, each with the path of its field. */
export class ValidationError extends XamalError {
  readonly issues: readonly Issue[];

  constructor(issues: readonly Issue[], heading?: string) {
    const body = formatIssues(issues);
    super('validation', heading ? `${heading}\n${body}` : body, { details: { issues } });
    this.name = 'ValidationError';
    this.issues = issues;
  }
}
