import { describe } from 'vitest';
import { s3Store } from '../../store/s3.ts';
import { storeContract } from '../support/store-contract.ts';
import { services, testPrefix } from './support.ts';

describe('the S3 store against s3rver', () => {
  storeContract('s3', async () => s3Store({ ...services().s3, prefix: `${testPrefix('store')}/` }));
});
