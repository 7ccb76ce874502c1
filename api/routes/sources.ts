import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { sourceKey, XamalError } from '../../core/index.ts';
import { required } from '../decorations.ts';
import { SourceUploadSchema } from '../schemas/sources.ts';

export const MAX_SOURCE_BYTES = 200 * 1024 * 1024;

/**
 * `POST /v1/sources`: a gzipped tarball of a Mix project, streamed to a temp file (hashed and
 * size-limited on the way) and then to the store as `sources/<sha256>.tar.gz`.
 */
export const sourceRoutes: FastifyPluginAsyncZod = async (app) => {
  const store = required(app.services, 'sourceStore');
  const maxBytes = app.settings.maxSourceBytes;
  app.addContentTypeParser(['application/gzip', 'application/x-gzip', 'application/octet-stream'], (_req, payload, done) => done(null, payload));
  app.post('/v1/sources', { bodyLimit: maxBytes, config: { scope: 'build' }, schema: { response: { 201: SourceUploadSchema } } }, async (req, reply) => {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/(x-)?gzip|^application\/octet-stream/.test(type)) {
      throw new XamalError('validation', `content-type: expected application/gzip (a .tar.gz of the project), got ${JSON.stringify(type)}`);
    }
    const hash = createHash('sha256');
    let size = 0;
    const tmp = join(tmpdir(), `xamal-source-${randomBytes(6).toString('hex')}.tar.gz`);
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > maxBytes) return cb(new XamalError('validation', `body: expected at most ${maxBytes} bytes`));
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(req.body as Readable, meter, createWriteStream(tmp));
      if (size < 18) throw new XamalError('validation', 'body: expected a gzip file, got too few bytes');
      const sha256 = hash.digest('hex');
      const key = sourceKey(sha256);
      if (!(await store.exists(key))) await store.putFile(key, tmp, 'application/gzip');
      return reply.code(201).send({ archive: key, sha256, size });
    } finally {
      await rm(tmp, { force: true });
    }
  });
};
