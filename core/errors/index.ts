export { ERROR_CODES, exitCodeFor, httpStatusFor, type ErrorCode } from './codes.ts';
export { formatIssues, joinPath, type Issue } from './issue.ts';
export { XamalError, isXamalError } from './xamal-error.ts';
export { ValidationError } from './validation-error.ts';
export { issuesFromZod, parseOrThrow } from './zod.ts';
