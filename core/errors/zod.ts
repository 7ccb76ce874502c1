import type { z } from 'zod';
import type { Issue } from './issue.ts';
import { joinPath } from './issue.ts';
import { ValidationError } from './validation-error.ts';

/** zod issues in our `path: message` form, all of them. */
export function issuesFromZod(error: z.ZodError, prefix: readonly PropertyKey[] = []): Issue[] {
  return error.issues.map((i) => ({ path: joinPath([...prefix, ...i.path]), message: i.message }));
}

/** Parses `input` with `schema`, throwing one ValidationError that lists every problem. */
export function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown, heading?: string): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(issuesFromZod(result.error), heading);
  return result.data;
}
