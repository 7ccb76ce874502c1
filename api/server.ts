import type { FastifyInstance } from 'fastify';
import { XamalError } from '../core/index.ts';

/** The only place the API listens. Resolves with the URL it serves on. */
export async function listen(app: FastifyInstance, host: string, port: number): Promise<string> {
  try {
    return await app.listen({ host, port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new XamalError('conflict', `farm API: ${host}:${port} is already in use (choose another with --port)`);
    if (code === 'EADDRNOTAVAIL') throw new XamalError('usage', `farm API: cannot listen on ${host} (address not on this machine)`);
    throw err;
  }
}
