import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { FarmPublicKeysSchema, type FarmPublicKeys } from '../../core/contracts/attestation.ts';
import { keyIdOf } from '../../core/signing.ts';

/**
 * Pure: the keys GET /v1/keys lists: the current one first, then each rotated-out one once (a retired
 * entry equal to the current key is the current key).
 */
export function publishedKeys(current: string | undefined, retired: readonly string[]): FarmPublicKeys {
  const keys: FarmPublicKeys['keys'] = current ? [{ keyid: keyIdOf(current), publicKey: current, current: true }] : [];
  for (const publicKey of retired) {
    const keyid = keyIdOf(publicKey);
    if (!keys.some((k) => k.keyid === keyid)) keys.push({ keyid, publicKey, current: false });
  }
  return { keys };
}

/** The farm's public signing keys: public (no token), so anyone can check an artifact's signature against them. */
export const keyRoutes: FastifyPluginAsyncZod = async (app) => {
  const { publicKeys } = app.settings;
  app.get('/v1/keys', { config: { public: true, accessLog: 'debug' }, schema: { response: { 200: FarmPublicKeysSchema } } }, async () => publicKeys);
};
