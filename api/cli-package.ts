import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { XamalError, isMissingFile } from '../core/index.ts';
import { CLI_PACKAGE_FILE, type CliPackage } from './schemas/cli-package.ts';

/** The CLI tarball the farm serves (XAMAL_CLI_PACKAGE): where it is and what `GET /v1/cli` says of it. */
export interface ServedCliPackage {
  path: string;
  info: CliPackage;
}

/**
 * Reads the `npm pack` tarball of xamal the farm serves to CI runners: its name must be
 * `xamal-<version>.tgz` and its content gzip; the sha256 is taken once, at start.
 */
export async function loadCliPackage(path: string): Promise<ServedCliPackage> {
  const file = basename(path);
  const version = CLI_PACKAGE_FILE.exec(file)?.[1];
  if (!version) throw new XamalError('validation', `XAMAL_CLI_PACKAGE: expected the path of an npm pack tarball named xamal-<version>.tgz, got ${JSON.stringify(path)}`);
  const fh = await open(path, 'r').catch((err: unknown) => {
    throw new XamalError('validation', `XAMAL_CLI_PACKAGE: ${isMissingFile(err) ? 'no such file' : (err as Error).message}: ${path}`);
  });
  try {
    const head = Buffer.alloc(2);
    await fh.read(head, 0, 2, 0);
    if (head[0] !== 0x1f || head[1] !== 0x8b) throw new XamalError('validation', `XAMAL_CLI_PACKAGE: expected a gzip tarball (npm pack), ${path} is not gzip`);
    const { size } = await fh.stat();
    const hash = createHash('sha256');
    await pipeline(createReadStream(path), hash);
    return { path, info: { name: 'xamal', version, file, sha256: hash.digest('hex'), size, url: `/v1/cli/${file}` } };
  } finally {
    await fh.close();
  }
}
