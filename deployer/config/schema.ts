import { z } from 'zod';
import { isXamalError, parseSelectorString, parseTarget, ReleaseNameSchema, sensitive, TargetSelectorSchema, ValidationError, type TargetSelector } from '../../core/index.ts';
import { PublicKeyTextSchema } from '../../core/contracts/attestation.ts';
import { BuildAssetsSchema, DebianPackageSchema } from '../../core/contracts/build-settings.ts';

/**
 * The schema of `config/deploy.yml` (after destination merge and `<%= ENV[…] %>` interpolation): the
 * one source of its types. Keys and shapes follow Kamal / Xamal; every object is strict, so an
 * unknown key is an error with its path. The parsed value is normalised (roles list, defaults
 * filled, camelCase) for the rest of the deployer.
 */

/** Service, destination, role, tag and alias names end up in paths, unit names and shell words. */
export const SAFE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const SAFE_NAME_HINT = 'letters, digits, "-" and "_", starting with a letter or digit, at most 63 characters';

export const NameSchema = z.string().regex(SAFE_NAME_RE, `expected a name of ${SAFE_NAME_HINT}`);
export const ServiceNameSchema = NameSchema;
export const DestinationNameSchema = NameSchema;

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6_RE = /^(?=.*:)[0-9A-Fa-f:.]{2,45}$/;
/** A host name, IPv4 or IPv6 address (no user, no port: those are `ssh.user` / `ssh.port`). */
export const HostSchema = z.string().refine((h) => HOSTNAME_RE.test(h) || IPV6_RE.test(h), 'expected a host name or IP address (user and port go under ssh)');

export const EnvNameSchema = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)');

const NoNul = (what: string) => z.string().min(1, `expected a non-empty ${what}`).refine((s) => !s.includes('\0'), `${what} cannot contain NUL`);

const Seconds = z.number().positive('expected a positive number of seconds');

// --- env -----------------------------------------------------------------------------------------

const EnvValueSchema = z
  .union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean' })
  .transform((v) => String(v));

const ClearEnvSchema = z.record(EnvNameSchema, EnvValueSchema);

/** `NAME` (the secret of the same name) or `NAME:SECRET` (an alias: env NAME from secret SECRET). */
const SecretRefSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z_][A-Za-z0-9_]*)?$/, 'expected NAME or NAME:SECRET_NAME')
  .transform((s) => {
    const [name, from] = s.split(':') as [string, string | undefined];
    return { name, from: from ?? name };
  });

const EnvSectionSchema = z
  .object({
    clear: ClearEnvSchema.default({}),
    secret: z.array(SecretRefSchema).default([]),
  })
  .strict();

const isStructuredEnv = (v: unknown, keys: string[]) =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && keys.some((k) => Object.hasOwn(v, k));

/** A plain map is shorthand for `clear:` (as in Kamal). */
const TagEnvSchema = z.preprocess((v) => (isStructuredEnv(v, ['clear', 'secret']) ? v : { clear: v }), EnvSectionSchema);

export const EnvSchema = z.preprocess(
  (v) => (v === undefined || isStructuredEnv(v, ['clear', 'secret', 'tags']) ? v : { clear: v }),
  z
    .object({
      clear: ClearEnvSchema.default({}),
      secret: z.array(SecretRefSchema).default([]),
      tags: z.record(NameSchema, TagEnvSchema).default({}),
    })
    .strict()
    .prefault({}),
);
export type Env = z.output<typeof EnvSchema>;
export type SecretRef = Env['secret'][number];

const RoleEnvSchema = z.preprocess((v) => (v === undefined || isStructuredEnv(v, ['clear', 'secret']) ? v : { clear: v }), EnvSectionSchema.prefault({}));

// --- servers -------------------------------------------------------------------------------------

/** `host` or `{host: tag}` / `{host: [tags]}` (one key). */
const HostEntrySchema = z
  .union([HostSchema, z.record(HostSchema, z.union([NameSchema, z.array(NameSchema)], { error: 'expected a tag or a list of tags' }))], {
    error: 'expected a host name, or a map {host: [tags]}',
  })
  .superRefine((v, ctx) => {
    if (typeof v === 'object' && Object.keys(v).length !== 1) ctx.addIssue({ code: 'custom', message: 'expected exactly one host per {host: [tags]} entry' });
  })
  .transform((v) => {
    if (typeof v === 'string') return { host: v, tags: [] as string[] };
    const [host, tags] = Object.entries(v)[0]!;
    return { host, tags: typeof tags === 'string' ? [tags] : tags };
  });
export type HostEntry = z.output<typeof HostEntrySchema>;

const HostListSchema = z.array(HostEntrySchema);

const RoleObjectSchema = z
  .object({
    hosts: HostListSchema,
    cmd: NoNul('command').optional(),
    env: RoleEnvSchema,
    tags: z.array(NameSchema).default([]),
  })
  .strict();

const RoleSchema = z.union([HostListSchema.transform((hosts) => ({ hosts, env: { clear: {}, secret: [] }, tags: [] as string[] })), RoleObjectSchema], {
  error: 'expected a list of hosts, or a map with hosts (and cmd, env, tags)',
});

export const ServersSchema = z.union([HostListSchema.transform((hosts) => ({ web: { hosts, env: { clear: {}, secret: [] }, tags: [] as string[] } })), z.record(NameSchema, RoleSchema)], {
  error: 'expected a list of hosts, or a map of roles',
});

// --- ssh -----------------------------------------------------------------------------------------

const SshUserSchema = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'expected a login name ([a-z_][a-z0-9_-]*)');
/** A port; a numeric string (`"2222"`, as Kamal's docs write it) is taken as its number. */
const PortSchema = z.preprocess(
  (v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
  z.number({ error: 'expected a port 1-65535' }).int('expected an integer port').min(1, 'expected a port 1-65535').max(65535, 'expected a port 1-65535'),
);

/** `host`, `user@host` or `user@host:port` — a jump host (ssh -J). */
const ProxySchema = z.string().transform((s, ctx) => {
  const m = /^(?:([a-z_][a-z0-9_-]{0,31})@)?([^@:]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/.exec(s);
  const host = m?.[2]?.replace(/^\[|\]$/g, '');
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || !host || !(HOSTNAME_RE.test(host) || IPV6_RE.test(host)) || (port !== undefined && (port < 1 || port > 65535))) {
    ctx.addIssue({ code: 'custom', message: 'expected a jump host: host, user@host or user@host:port' });
    return z.NEVER;
  }
  return { user: m[1], host, port };
});

const FingerprintSchema = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected a host key fingerprint like SHA256:<43 base64 characters> (ssh-keygen -lf)');

/**
 * `ssh.config` (Kamal's, net-ssh's): true loads the user's ~/.ssh/config and /etc/ssh/ssh_config,
 * false none, a path or a list of paths those files.
 */
const SshConfigFilesSchema = z.union([z.boolean(), NoNul('path'), z.array(NoNul('path')).min(1, 'expected at least one path')], {
  error: 'expected true, false, a path or a list of paths',
});

export const SSH_LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;

export const SshSchema = z
  .object({
    /** Unset: ~/.ssh/config's User for the host, else root. */
    user: SshUserSchema.optional(),
    /** Unset: ~/.ssh/config's Port for the host, else 22. */
    port: PortSchema.optional(),
    keys: z.array(NoNul('key path')).default([]),
    /** Private keys given inline (usually `<%= ENV["SSH_PRIVATE_KEY"] %>`): carried as secrets. */
    key_data: z
      .array(NoNul('key'))
      .default([])
      .transform((keys) => keys.map(sensitive)),
    keys_only: z.boolean().default(false),
    proxy: ProxySchema.optional(),
    connect_timeout: Seconds.default(30),
    known_hosts: NoNul('path').optional(),
    host_keys: z.record(HostSchema, FingerprintSchema).default({}),
    log_level: z.enum(SSH_LOG_LEVELS).default('fatal'),
    config: SshConfigFilesSchema.default(true),
  })
  .strict()
  .transform((s) => ({
    user: s.user,
    port: s.port,
    keys: s.keys,
    keyData: s.key_data,
    keysOnly: s.keys_only,
    proxy: s.proxy,
    connectTimeout: s.connect_timeout,
    knownHosts: s.known_hosts,
    hostKeys: s.host_keys,
    logLevel: s.log_level,
    config: typeof s.config === 'string' ? [s.config] : s.config,
  }));
export type SshConfig = z.output<typeof SshSchema>;

// --- caddy, release, health check, boot ----------------------------------------------------------

export const CaddySchema = z
  .object({
    host: HostSchema.optional(),
    hosts: z.array(HostSchema).default([]),
    app_port: PortSchema.default(4000),
    /** true: certificates from ACME (Let's Encrypt); "internal": Caddy's own CA (tests, private networks); false: plain HTTP. */
    ssl: z.custom<boolean | 'internal'>((v) => v === true || v === false || v === 'internal', { error: 'expected true, false or "internal"' }).default(true),
  })
  .strict()
  .transform((c) => ({ hosts: [...new Set([...(c.host ? [c.host] : []), ...c.hosts])], appPort: c.app_port, ssl: c.ssl }));
export type CaddyConfig = z.output<typeof CaddySchema>;

const MixEnvSchema = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, 'expected a MIX_ENV like prod ([a-z][a-z0-9_]*)');

export const ReleaseSchema = z
  .object({
    name: ReleaseNameSchema.optional(),
    mix_env: MixEnvSchema.default('prod'),
  })
  .strict();

const HealthPathSchema = z.string().regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$/, 'expected an absolute URL path like /up');

export const HealthCheckSchema = z
  .object({
    path: HealthPathSchema.default('/up'),
    interval: Seconds.default(1),
    timeout: Seconds.default(30),
  })
  .strict();

/** `limit: 2` hosts at a time, or `limit: "25%"` of them; `wait` seconds between groups. */
export const BootSchema = z
  .object({
    limit: z
      .union([z.number().int().positive(), z.string().regex(/^(?:100|[1-9]\d?)%$/, 'expected a percentage like "25%" (1-100)')], {
        error: 'expected a number of hosts or a percentage like "25%"',
      })
      .transform((l) => (typeof l === 'number' ? { hosts: l } : { percent: Number(l.slice(0, -1)) }))
      .optional(),
    wait: z.number().nonnegative('expected seconds >= 0').optional(),
  })
  .strict();

/**
 * A duration: `60s`, `2m`, `1.5s`, `500ms`, or a number of seconds. Parsed to seconds.
 */
export const DurationSchema = z
  .union([z.number(), z.string()], { error: 'expected a duration like 60s, 2m or 500ms' })
  .transform((v, ctx) => {
    const m = typeof v === 'number' ? [String(v), String(v), 's'] : /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(v);
    const n = m ? Number(m[1]) * ({ ms: 0.001, s: 1, m: 60 } as const)[(m[2] ?? 's') as 'ms' | 's' | 'm'] : NaN;
    if (!(n > 0) || !Number.isFinite(n)) {
      ctx.addIssue({ code: 'custom', message: `expected a positive duration like 60s, 2m or 500ms, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });

/**
 * `rollout:`: after a switch, the health path is watched through Caddy on every host for `watch`
 * (absent: no watch), every `interval`; `failures` failed checks in a row on one host fail the
 * rollout, which switches back to the previous version by itself and marks the new one failed.
 * `max_5xx_percent`: the share of 5xx answers through Caddy (its access log of the app's host names)
 * on one host, once it counted `min_requests` answers since the switch, over which the rollout fails too.
 */
export const RolloutSchema = z
  .object({
    watch: DurationSchema.optional(),
    interval: DurationSchema.default(2),
    failures: z.number().int('expected an integer').min(1, 'expected at least 1').max(100, 'expected at most 100').default(2),
    max_5xx_percent: z.number().min(0, 'expected a percentage >= 0').max(100, 'expected a percentage <= 100').optional(),
    min_requests: z.number().int('expected an integer').min(1, 'expected at least 1').default(20),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.watch !== undefined && r.interval > r.watch) ctx.addIssue({ code: 'custom', path: ['interval'], message: `expected an interval no longer than watch (${r.watch} s)` });
    if (r.max_5xx_percent !== undefined && r.watch === undefined) ctx.addIssue({ code: 'custom', path: ['max_5xx_percent'], message: 'is checked during the watch: set rollout.watch too' });
  })
  .transform((r) => ({ watchS: r.watch, intervalS: r.interval, failures: r.failures, max5xxPercent: r.max_5xx_percent, minRequests: r.min_requests }));
export type RolloutConfig = z.output<typeof RolloutSchema>;

// --- farm, packages, aliases ---------------------------------------------------------------------

/**
 * The first words of xamal's commands (cli/table.ts; a unit test keeps the two equal) and `help`: an
 * alias cannot take one. `console` is not among them: it is a built-in alias deploy.yml may replace.
 */
export const COMMAND_WORDS: readonly string[] = ['app', 'audit', 'build', 'caddy', 'canary', 'config', 'deploy', 'details', 'docs', 'farm', 'help', 'host', 'init', 'lock', 'prune', 'redeploy', 'remove', 'rollback', 'secrets', 'server', 'setup', 'target', 'verify', 'version'];

/** A tuple (`linux-x86_64-gnu2.36-debian12-…`), a selector string (`otp=27,distro=debian12`) or a selector map. */
const FarmTargetSchema = z.union([z.string(), TargetSelectorSchema], { error: 'expected a target tuple, a selector string or a selector map' }).transform((t, ctx): string | TargetSelector => {
  if (typeof t !== 'string') return t;
  if (!t.includes('=')) {
    const parsed = parseTarget(t);
    if (parsed.ok) return t;
    for (const i of parsed.issues) ctx.addIssue({ code: 'custom', message: `${i.path}: ${i.message}` });
    return z.NEVER;
  }
  try {
    return parseSelectorString(t);
  } catch (err) {
    if (!isXamalError(err) || !(err instanceof ValidationError)) throw err;
    for (const i of err.issues) ctx.addIssue({ code: 'custom', message: `${i.path}: ${i.message}` });
    return z.NEVER;
  }
});

export const FarmSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }),
    token: EnvNameSchema.default('XAMAL_FARM_TOKEN'),
    target: FarmTargetSchema.optional(),
    /** The farm's signing key (`xamal farm keys new` prints it): every artifact is verified against it before a host pulls it. */
    public_key: PublicKeyTextSchema.optional(),
    /** More trusted keys (a rotation: the new one and the old one while artifacts signed by it are still deployed). */
    public_keys: z.array(PublicKeyTextSchema).min(1, 'expected at least one key (or leave public_keys out)').max(16, 'expected at most 16 keys').optional(),
  })
  .strict()
  .transform((f) => ({
    url: f.url.replace(/\/+$/, ''),
    tokenSecret: f.token,
    target: f.target,
    /** Every key trusted to sign artifacts (public_key, then public_keys); none: the farm's own keys are used, with a warning. */
    publicKeys: [...new Set([...(f.public_key ? [f.public_key] : []), ...(f.public_keys ?? [])])],
  }));
export type FarmConfig = z.output<typeof FarmSchema>;

/**
 * `builder:`: what `xamal build` sends with the build request (Kamal keeps builder settings here):
 * environment for every build step, and the names of secrets the deps and assets steps get (their
 * values from the environment of `xamal build`, never from this file).
 */
export const BuilderSchema = z
  .object({
    env: z.record(EnvNameSchema, z.string().max(4096, 'expected at most 4096 characters')).default({}),
    secrets: z.array(EnvNameSchema).max(16, 'expected at most 16 secrets').default([]),
    /** Debian packages the build needs beyond the builder's (the farm installs them into a derived builder). */
    packages: z.array(DebianPackageSchema).max(32, 'expected at most 32 packages').default([]),
    /** What the assets step reads: the farm skips it when none of it changed (core/contracts/build-settings.ts). */
    assets: BuildAssetsSchema.optional(),
  })
  .strict();

// --- the file ------------------------------------------------------------------------------------

export const DeployFileSchema = z
  .object({
    service: ServiceNameSchema,
    servers: ServersSchema,
    primary_role: NameSchema.default('web'),
    allow_empty_roles: z.boolean().default(false),
    require_destination: z.boolean().default(false),
    ssh: SshSchema.prefault({}),
    caddy: CaddySchema.prefault({}),
    env: EnvSchema,
    release: ReleaseSchema.prefault({}),
    health_check: HealthCheckSchema.prefault({}),
    readiness_delay: z.number().nonnegative('expected seconds >= 0').default(7),
    deploy_timeout: Seconds.default(30),
    drain_timeout: Seconds.default(30),
    retain_releases: z.number().int('expected an integer').min(1, 'expected at least 1').default(5),
    boot: BootSchema.prefault({}),
    rollout: RolloutSchema.prefault({}),
    hooks_path: NoNul('path').default('.xamal/hooks'),
    secrets_path: NoNul('path').default('.xamal/secrets'),
    aliases: z.record(NameSchema, NoNul('command')).default({}),
    farm: FarmSchema.optional(),
    builder: BuilderSchema.prefault({}),
    release_command: NoNul('command').optional(),
    packages: z.array(DebianPackageSchema).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    const roles = Object.entries(c.servers);
    if (roles.length === 0) ctx.addIssue({ code: 'custom', path: ['servers'], message: 'expected at least one role with hosts' });
    if (!c.allow_empty_roles) {
      for (const [name, role] of roles) {
        if (role.hosts.length === 0) ctx.addIssue({ code: 'custom', path: ['servers', name], message: 'role has no hosts (set allow_empty_roles: true to allow)' });
      }
    }
    if (roles.length > 0 && !Object.hasOwn(c.servers, c.primary_role)) {
      ctx.addIssue({ code: 'custom', path: ['primary_role'], message: `no role named ${JSON.stringify(c.primary_role)} under servers (roles: ${roles.map(([n]) => n).join(', ')})` });
    }
    for (const name of Object.keys(c.aliases)) {
      if (COMMAND_WORDS.includes(name)) ctx.addIssue({ code: 'custom', path: ['aliases', name], message: `alias ${JSON.stringify(name)} is named like the xamal command ${JSON.stringify(name)}; give it another name` });
    }
    if (c.rollout.max5xxPercent !== undefined && !c.caddy.hosts.length) {
      ctx.addIssue({ code: 'custom', path: ['rollout', 'max_5xx_percent'], message: "counts the answers in Caddy's access log of the app's host names: set caddy.hosts too" });
    }
    if (!c.release.name && !ReleaseNameSchema.safeParse(c.service.toLowerCase().replace(/-/g, '_')).success) {
      ctx.addIssue({ code: 'custom', path: ['release', 'name'], message: `cannot derive a release name from service ${JSON.stringify(c.service)}; set release.name` });
    }
  })
  .transform((c) => {
    const roles = Object.entries(c.servers).map(([name, r]) => ({ name, hosts: r.hosts, cmd: 'cmd' in r ? r.cmd : undefined, env: r.env, tags: r.tags }));
    return {
      service: c.service,
      primaryRole: c.primary_role,
      allowEmptyRoles: c.allow_empty_roles,
      requireDestination: c.require_destination,
      roles,
      /** Every host once, in the order first listed. */
      hosts: [...new Set(roles.flatMap((r) => r.hosts.map((h) => h.host)))],
      ssh: c.ssh,
      caddy: c.caddy,
      env: c.env,
      release: { name: c.release.name ?? c.service.toLowerCase().replace(/-/g, '_'), mixEnv: c.release.mix_env },
      healthCheck: c.health_check,
      readinessDelay: c.readiness_delay,
      deployTimeout: c.deploy_timeout,
      drainTimeout: c.drain_timeout,
      retainReleases: c.retain_releases,
      boot: c.boot,
      rollout: c.rollout,
      hooksPath: c.hooks_path,
      secretsPath: c.secrets_path,
      aliases: c.aliases,
      farm: c.farm,
      builder: c.builder,
      releaseCommand: c.release_command,
      packages: c.packages,
    };
  });

export type DeployFile = z.input<typeof DeployFileSchema>;
export type DeployConfig = z.output<typeof DeployFileSchema>;
export type Role = DeployConfig['roles'][number];

/** Top-level keys, for docs and for "did you mean" hints. */
export const TOP_LEVEL_KEYS = Object.keys(DeployFileSchema.in.shape) as string[];
