import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { formatIssues, httpStatusFor, isXamalError, ValidationError } from '../core/index.ts';

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  issues?: { path: string; message: string }[];
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
    reply.code(404).send({ statusCode: 404, error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
}
