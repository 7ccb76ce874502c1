import { XamalError } from '../errors/index.ts';

/**
 * Store keys are relative, slash-separated, made of safe characters, with no empty, `.` or `..`
 * segment — so the local-disk store can never leave its root and S3 keys are predictable.
 */
export function checkKey(key: string): string {
  const segments = key.split('/');
  if (
    key.length === 0 ||
    key.length > 1024 ||
    !/^[A-Za-z0-9._~+@=-]+(?:\/[A-Za-z0-9._~+@=-]+)*\/?$/.test(key) ||
    segments.some((seg) => seg === '.' || seg === '..')
  ) {
    throw new XamalError('validation', `invalid store key ${JSON.stringify(key)}`);
  }
  return key;
}
