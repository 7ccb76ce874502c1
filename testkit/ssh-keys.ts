import { utils } from 'ssh2';

/**
 * An ed25519 key pair in OpenSSH format, from ssh2's generator. That generator strips leading zero
 * bytes from the public key, so about 1 pair in 256 is one ssh2 itself cannot parse (mscdex/ssh2#1513,
 * seen here as a unit test's "Malformed OpenSSH public key"); such a pair is drawn again.
 */
export function ed25519KeyPair(): { public: string; private: string } {
  for (;;) {
    const pair = utils.generateKeyPairSync('ed25519');
    if (!(utils.parseKey(pair.public) instanceof Error) && !(utils.parseKey(pair.private) instanceof Error)) return pair;
  }
}
