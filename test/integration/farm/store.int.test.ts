import { describe } from 'vitest';
import { s3Store } from '../../../store/s3.ts';
import { storeContract } from '../../../testkit/store-contract.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';

describe('the S3 store against s3rver', () => {
  storeContract('s3', async () => s3Store({ ...services().s3, prefix: `${testPrefix('store')}/` }));
});
