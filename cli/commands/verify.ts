import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArtifactParamsSchema } from '../../api/schemas/artifacts.ts';
import { ManifestSchema } from '../../core/contracts/manifest.ts';
import { exitCodeFor, formatTarget, LocalExecutor, XamalError } from '../../core/index.ts';
import { parsePublicKey, trustedKeys } from '../../core/signing.ts';
import { deployerEnv } from '../../deployer/config.ts';
import { DEFAULT_CONFIG_FILE, loadDeployConfig } from '../../deployer/config/load.ts';
import type { FarmConfig } from '../../deployer/config/schema.ts';
import { farmClient } from '../../deployer/farm-client.ts';
import { loadSecrets } from '../../deployer/secrets.ts';
import { trustFor, type Trust } from '../../deployer/trust.ts';
import { sha256Hex, verifyArtifact, type ArtifactClaim, type AttestationTexts, type Verification } from '../../deployer/verify.ts';
import { flagCommand, parseFlags, usageError } from '../args.ts';
import { cliConfig } from '../config.ts';
import type { FlagTable } from '../help.ts';
import type { Io } from '../io.ts';

const USAGE =
  'xamal verify APP VERSION TUPLE [--mix-env ENV] [--release NAME] [--farm URL] [--tarball FILE] [--key KEY …] [-d DESTINATION] [-c CONFIG_FILE] [--json] | xamal verify --manifest FILE [--signature FILE] [--provenance FILE] [--sbom FILE] [--tarball FILE] [APP VERSION TUPLE] [--key KEY …] [--json]';

const FLAGS = {
  farm: { type: 'string', valueName: 'URL', description: "The farm's URL", defaultText: 'farm.url of deploy.yml, else XAMAL_FARM_URL' },
  'mix-env': { type: 'string', valueName: 'ENV', description: 'Which build of the commit: its MIX_ENV', defaultText: 'prod' },
  release: { type: 'string', valueName: 'NAME', description: 'Which build of the commit: its release', defaultText: 'APP' },
  key: { type: 'string', multiple: true, valueName: 'KEY', description: 'A trusted public key (ed25519:…), instead of deploy.yml\'s farm.public_key(s)' },
  manifest: { type: 'string', valueName: 'FILE', description: 'Verify local files instead: the manifest.json' },
  signature: { type: 'string', valueName: 'FILE', description: 'Local files: its signature, manifest.dsse.json' },
  provenance: { type: 'string', valueName: 'FILE', description: 'Local files: the provenance, provenance.dsse.json' },
  sbom: { type: 'string', valueName: 'FILE', description: 'Local files: the SBOM, sbom.cdx.json' },
  tarball: { type: 'string', valueName: 'FILE', description: 'A release tarball on disk, checked against the sha256 of the signed manifest' },
  destination: { type: 'string', short: 'd', valueName: 'DESTINATION', description: 'Read config/deploy.DESTINATION.yml merged over config/deploy.yml' },
  'config-file': { type: 'string', short: 'c', valueName: 'CONFIG_FILE', description: 'The deploy configuration whose farm (url, token, public keys) is used', defaultText: 'config/deploy.yml, when there is one' },
  json: { type: 'boolean', description: 'Print the checks as JSON' },
} as const satisfies FlagTable;

type Values = ReturnType<typeof parseFlags<typeof FLAGS>>['values'];

/** The files of an artifact read from disk instead of the farm (--tarball goes with either). */
const LOCAL_FLAGS = ['manifest', 'signature', 'provenance', 'sbom'] as const;

/** deploy.yml's farm section and its token, when there is a deploy.yml (or -c names one). */
async function projectFarm(values: Values): Promise<{ farm: FarmConfig | undefined; token: string | undefined }> {
  const root = process.cwd();
  if (values['config-file'] === undefined && !existsSync(join(root, DEFAULT_CONFIG_FILE))) return { farm: undefined, token: undefined };
  const env = deployerEnv();
  const { config, destination } = await loadDeployConfig({ root, configFile: values['config-file'], destination: values.destination, env });
  if (!config.farm) return { farm: undefined, token: undefined };
  const secrets = await loadSecrets({ root, secretsPath: config.secretsPath, destination, env, executor: new LocalExecutor(env) });
  return { farm: config.farm, token: secrets.get(config.farm.tokenSecret)?.reveal() ?? env[config.farm.tokenSecret] };
}

/** APP VERSION TUPLE, checked as the artifact routes check them. */
function claimOf(positionals: readonly string[], values: Values): ArtifactClaim {
  if (positionals.length !== 3) throw usageError(positionals.length > 3 ? `unexpected argument ${JSON.stringify(positionals[3])}` : 'expected APP VERSION TUPLE', USAGE);
  const [app, version, tuple] = positionals as [string, string, string];
  const p = ArtifactParamsSchema.safeParse({ app, version, tuple });
  if (!p.success) {
    const i = p.error.issues[0]!;
    throw usageError(`${String(i.path[0]).toUpperCase()}: ${i.message}, got ${JSON.stringify({ app, version, tuple }[i.path[0] as 'app'])}`, USAGE);
  }
  return { app, version, tuple: formatTarget(p.data.tuple), mixEnv: values['mix-env'], release: values.release };
}

/** Local files: the claim is APP VERSION TUPLE when given, else what the manifest itself names. */
async function localTexts(values: Values): Promise<AttestationTexts> {
  const read = async (flag: (typeof LOCAL_FLAGS)[number]) => {
    const file = values[flag];
    if (file === undefined) return null;
    return readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new XamalError(err.code === 'ENOENT' ? 'not_found' : 'validation', `--${flag} ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    });
  };
  const manifest = await read('manifest');
  if (manifest === null) throw usageError('--manifest FILE: the manifest.json to verify (with the local files --signature, --provenance, --sbom, --tarball)', USAGE);
  return { manifest, signature: await read('signature'), provenance: await read('provenance'), sbom: await read('sbom') };
}

/** The sha256 of --tarball's file, when given. */
async function tarballSha(file: string | undefined): Promise<string | undefined> {
  if (file === undefined) return undefined;
  const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new XamalError(err.code === 'ENOENT' ? 'not_found' : 'validation', `--tarball ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  return sha256Hex(bytes);
}

function claimFromManifest(text: string): ArtifactClaim {
  let m: ReturnType<typeof ManifestSchema.safeParse> | undefined;
  try {
    m = ManifestSchema.safeParse(JSON.parse(text));
  } catch {
    m = undefined;
  }
  return m?.success ? { app: m.data.app, version: m.data.version, tuple: m.data.tuple } : { app: '(unreadable manifest)', version: 'latest', tuple: '(unreadable manifest)' };
}

function print(io: Io, claim: ArtifactClaim, trust: Trust, v: Verification, json: boolean): void {
  if (json) {
    io.out(JSON.stringify({ ok: v.ok, artifact: claim, keys: { from: trust.keysFrom, keyids: [...trust.trusted.keys()] }, checks: v.checks }, null, 2));
    return;
  }
  for (const c of v.checks) io.out(`${c.ok ? '✓' : '✗'} ${c.check}: ${c.detail}`);
  const bad = v.checks.filter((c) => !c.ok).length;
  io.out(v.ok ? `verified: ${claim.app} ${claim.version} ${claim.tuple}, ${v.checks.length} checks passed` : `NOT verified: ${claim.app} ${claim.version} ${claim.tuple}: ${bad} of ${v.checks.length} checks failed`);
}

export default flagCommand(
  {
    usage: USAGE,
    description: [
      "Checks an artifact before anything runs it, as xamal deploy does for every artifact it resolves: the manifest's signature by a trusted key, that manifest.json is what was signed and names APP VERSION TUPLE, the provenance (pinned by the manifest's sha256, signed, an in-toto SLSA v1 statement about this tarball built from this commit) and the SBOM's sha256. Prints one line per check, ✓ or ✗ and why.",
      '',
      "Trusted keys: --key, else deploy.yml's farm.public_key and farm.public_keys; with neither, the farm's own keys (GET /v1/keys), with a warning. VERSION: a full commit, a unique prefix of ≥ 7, a mix.exs version or latest. The token is deploy.yml's farm.token secret, else XAMAL_FARM_TOKEN.",
      '',
      'Exit code: 0 when every check passed, 12 when any failed.',
    ].join('\n'),
    flags: FLAGS,
    examples: [
      ['xamal verify shop 3f2a9c1 linux-x86_64-gnu2.36-debian12-otp27.3.4.1-elixir1.18.3', "Verify the farm's artifact of shop at that commit, against deploy.yml's keys"],
      ['xamal verify --manifest manifest.json --signature manifest.dsse.json --provenance provenance.dsse.json --tarball shop.tar.gz --key ed25519:…', 'Verify downloaded files'],
    ],
  },
  async ({ positionals, values }, io) => runVerify(positionals, values as Values, io),
);

async function runVerify(positionals: readonly string[], values: Values, io: Io): Promise<number> {
  const local = LOCAL_FLAGS.some((f) => values[f] !== undefined);
  if (local && (values.farm || values['mix-env'] || values.release)) throw usageError('--farm, --mix-env, --release: only when verifying the farm\'s artifact (not with --manifest)', USAGE);
  const project = await projectFarm(values);
  const warn = (line: string) => io.err(line);
  // Each --key checked first, so a bad one is named by its flag.
  for (const k of values.key ?? []) parsePublicKey(k, '--key');
  const pinned = values.key?.length ? values.key : (project.farm?.publicKeys ?? []);
  const keysFrom = values.key?.length ? '--key' : project.farm?.publicKeys.length ? `deploy.yml farm.public_key${pinned.length > 1 ? 's' : ''}` : '';
  let texts: AttestationTexts;
  let claim: ArtifactClaim;
  let trust: Trust;
  const tarballSha256 = await tarballSha(values.tarball);
  if (local) {
    texts = await localTexts(values);
    claim = positionals.length ? claimOf(positionals, values) : claimFromManifest(texts.manifest);
    if (!pinned.length) throw usageError('no trusted key: give --key ed25519:… or set farm.public_key in config/deploy.yml', USAGE);
    trust = { trusted: trustedKeys(pinned, keysFrom), keysFrom, pinned: true };
  } else {
    claim = claimOf(positionals, values);
    const url = values.farm ?? project.farm?.url ?? cliConfig().farmUrl;
    const token = project.token ?? cliConfig().farmToken;
    if (!url || !token) throw usageError(`missing ${[!url && '--farm (or farm.url in deploy.yml, or XAMAL_FARM_URL)', !token && 'a token (XAMAL_FARM_TOKEN)'].filter(Boolean).join(', ')}`, USAGE);
    const client = farmClient(url, token);
    trust = pinned.length ? { trusted: trustedKeys(pinned, keysFrom), keysFrom, pinned: true } : await trustFor([], client, warn);
    texts = await client.attestations(claim.app, claim.version, claim.tuple, { mixEnv: claim.mixEnv, release: claim.release });
  }
  const v = verifyArtifact({ texts, trusted: trust.trusted, keysFrom: trust.keysFrom, artifact: claim, tarballSha256 });
  print(io, claim, trust, v, values.json === true);
  return v.ok ? 0 : exitCodeFor('verification_failed');
}
