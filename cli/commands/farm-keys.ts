import { resolve } from 'node:path';
import { deployYmlKeyLines, RETIRED_KEYS_SETTING, SIGNING_KEY_SETTING, writeNewSigningKey } from '../../core/signing-key-file.ts';
import { flagCommand, usageError } from '../args.ts';

const USAGE = 'xamal farm keys new [--out FILE]';
const DEFAULT_OUT = 'xamal-signing-key.pem';

/** Makes the farm's artifact signing key (issue 23): the private key to a new file, the public key and deploy.yml's pin printed. */
export default flagCommand({
  usage: USAGE,
  description: `The private key (PKCS#8 PEM, ed25519, mode 0600) goes to FILE, never overwritten; keep it outside the bucket and give it to every worker as ${SIGNING_KEY_SETTING}. To rotate: make a new key, point ${SIGNING_KEY_SETTING} at it, and list the old public key in ${RETIRED_KEYS_SETTING} while artifacts it signed are deployed.`,
  flags: {
    out: { type: 'string', valueName: 'FILE', description: 'Where the private key is written', defaultText: DEFAULT_OUT },
  },
  examples: [['xamal farm keys new --out /etc/xamal/signing-key.pem', `A key for the workers' ${SIGNING_KEY_SETTING}; pin the printed public key in deploy.yml`]],
}, async ({ positionals, values }, io) => {
  if (positionals[0] !== 'new' || positionals.length !== 1) throw usageError('expected `new`', USAGE);
  if (values.out === '') throw usageError('--out: expected a file path', USAGE);
  const out = resolve(values.out ?? DEFAULT_OUT);
  const { publicKey, keyid } = await writeNewSigningKey(out);
  io.out(`private key: ${out} (mode 0600; set ${SIGNING_KEY_SETTING}=${out} on every worker)`);
  io.out(`public key: ${publicKey}`);
  io.out(`key id: ${keyid}`);
  io.out('config/deploy.yml:');
  io.out(deployYmlKeyLines(publicKey));
  return 0;
});
