import { utils } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { ed25519KeyPair } from '../../../testkit/ssh-keys.ts';

describe('ed25519 key pairs for the ssh tests', () => {
  it('every pair of 2,000 parses, public and private, with the 32-byte key (ssh2 alone fails about 1 in 256)', () => {
    for (let i = 0; i < 2_000; i++) {
      const pair = ed25519KeyPair();
      const pub = utils.parseKey(pair.public);
      const priv = utils.parseKey(pair.private);
      if (pub instanceof Error || priv instanceof Error) throw new Error(`pair ${i} does not parse`);
      expect(pub.getPublicSSH().equals(priv.getPublicSSH())).toBe(true);
    }
  });
});
