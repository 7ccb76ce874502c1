import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { formatIssues, httpStatusFor, isXamalError, ValidationError, XamalError } from '../core/index.ts';
import type { ErrorBody } from './schemas/errors.ts';

/** An error answer sent before or instead of a handler (auth, signed links, webhooks), shaped like the handler's. */
export function refuse(reply: FastifyReply, statusCode: number, error: string, message: string): FastifyReply {
  return reply.code(statusCode).send({ statusCode, error, message } satisfies ErrorBody);
}

/** The value, or a 404 saying what is missing. */
export function found<T>(value: T | undefined, missing: string): T {
  if (value === undefined) throw new XamalError('not_found', missing);
  return value;
}

/**
 * The API's one error handler: expected errors keep their message and status; zod failures become
 * 400 with every field path; anything else is a 500 whose details stay in the log.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    let body: ErrorBody;
    if (hasZodFastifySchemaValidationErrors(err)) {
      const issues = err.validation.map((v) => {
        const where = (err as FastifyError).validationContext ?? 'body';
        const path = [where, ...v.instancePath.split('/').filter(Boolean)].join('/');
        return { path, message: v.message ?? 'invalid' };
      });
      body = { statusCode: 400, error: 'validation', message: formatIssues(issues), issues };
    } else if (err instanceof ValidationError) {
      body = { statusCode: 400, error: 'validation', message: err.message, issues: [...err.issues] };
    } else if (isXamalError(err)) {
      const statusCode = httpStatusFor(err.code);
      body = { statusCode, error: err.code, message: statusCode >= 500 && err.code === 'internal' ? 'internal error' : err.message };
    } else if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      // fastify's own client errors (bad JSON, body too large, unsupported media type)
      body = { statusCode: err.statusCode, error: (err as FastifyError).code ?? 'bad_request', message: err.message };
    } else {
      req.log.error({ err }, 'request failed');
      body = { statusCode: 500, error: 'internal', message: 'internal error' };
    }
    if (body.statusCode >= 500) req.log.warn({ statusCode: body.statusCode, error: body.error }, 'request failed');
    return reply.code(body.statusCode).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    refuse(reply, 404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`);
  });
}
