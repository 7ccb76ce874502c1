import { randomBytes } from 'node:crypto';
import { hashToken, SCOPES, type Scope } from '../../api/auth.ts';
import { flagCommand, usageError } from '../args.ts';

const USAGE = 'xamal farm token new --name NAME --scopes read,build[,admin]';

/** Makes a token: prints it once, and the hashed entry to add to XAMAL_FARM_TOKENS. */
export default flagCommand({
  usage: USAGE,
  description: 'read: status, logs and downloads; build: submit and cancel builds; admin: everything, the queues too.',
  flags: {
    name: { type: 'string', valueName: 'NAME', description: "The token's name (lowercase letters, digits, _ and -; at most 32), as the farm's logs say it" },
    scopes: { type: 'string', valueName: 'SCOPES', description: 'What the token may do: read, build and admin, comma-separated', defaultText: 'read' },
  },
  examples: [['xamal farm token new --name ci --scopes read,build', "A token for CI; add the printed entry to the farm's XAMAL_FARM_TOKENS"]],
}, async ({ positionals, values }, io) => {
  if (positionals[0] !== 'new' || positionals.length !== 1) throw usageError('expected `new`', USAGE);
  if (!values.name || !/^[a-z0-9][a-z0-9_-]{0,31}$/.test(values.name)) throw usageError(`--name: expected a name like ci, got ${JSON.stringify(values.name ?? '')}`, USAGE);
  const scopes = (values.scopes ?? 'read').split(',').map((s) => s.trim());
  const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (bad.length) throw usageError(`--scopes: expected ${SCOPES.join(', ')}, got ${bad.join(', ')}`, USAGE);
  const token = randomBytes(24).toString('base64url');
  io.out(`token (shown once): ${token}`);
  io.out(`add to XAMAL_FARM_TOKENS: ${values.name}:${(scopes as Scope[]).join('+')}:${hashToken(token).toString('hex')}`);
  return 0;
});
