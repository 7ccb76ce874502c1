import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import { localStore } from '../../../store/local.ts';
import { storeContract } from '../../../testkit/store-contract.ts';

describe('the local-disk store', () => {
  storeContract('local disk', async () => localStore(await mkdtemp(join(tmpdir(), 'xamal-local-store-'))));
});
