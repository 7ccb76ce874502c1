import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isMissingFile, XamalError } from '../../core/index.ts';
import { HOOK_NAMES, type HookName } from '../hooks.ts';

/** `xamal init`: the files it writes (a plan, pure), then writing them (refusing to overwrite). */
export interface InitFile {
  path: string;
  content: string;
  mode: number;
}

export const DEPLOY_YML_STUB = `# Deploy configuration: \`xamal docs\` lists every section, \`xamal docs SECTION\` explains one.
# \`xamal config\` shows the result (with -d DESTINATION: merged with config/deploy.DESTINATION.yml).

# The service name, used in paths and unit names on the servers.
service: my-app

# Hosts to deploy to (xamal docs servers).
servers:
  web:
    - 192.168.0.1

# How to reach them (xamal docs ssh).
ssh:
  user: root

# The public name Caddy serves (xamal docs caddy).
# caddy:
#   host: app.example.com
#   app_port: 4000

# The release's environment; secret values come from .xamal/secrets (xamal docs env).
env:
  clear:
    PHX_HOST: app.example.com
  secret:
    - SECRET_KEY_BASE

# Where releases are built (xamal docs farm).
# farm:
#   url: https://farm.example.com
#   token: XAMAL_FARM_TOKEN

# Run before the new release boots (xamal docs release).
# release_command: bin/my_app eval "MyApp.Release.migrate()"
`;

export const SECRETS_STUB = `# Secrets for the release and hooks (xamal docs secrets). Keep this file out of git.
# dotenv format: NAME=value, \${VAR} / $VAR from earlier lines or the environment, $(command) output.
#
# SECRET_KEY_BASE=$(mix phx.gen.secret)
# XAMAL_FARM_TOKEN=$XAMAL_FARM_TOKEN
`;

const SAMPLE_BODY: Record<HookName, string> = {
  'pre-connect': 'echo "About to connect to $XAMAL_HOSTS for $XAMAL_COMMAND"',
  'pre-build': 'echo "Building $XAMAL_SERVICE_VERSION"',
  'pre-deploy': 'echo "Deploying $XAMAL_SERVICE_VERSION to ${XAMAL_DESTINATION:-default} ($XAMAL_HOSTS)"',
  'pre-app-boot': 'echo "Booting $XAMAL_VERSION on $XAMAL_HOSTS"',
  'post-app-boot': 'echo "Booted $XAMAL_VERSION on $XAMAL_HOSTS"',
  'pre-caddy-switch': 'echo "Switching Caddy to $XAMAL_VERSION on $XAMAL_HOSTS"',
  'post-caddy-switch': 'echo "Caddy now serves $XAMAL_VERSION on $XAMAL_HOSTS"',
  'post-deploy': 'echo "$XAMAL_PERFORMER deployed $XAMAL_SERVICE_VERSION to ${XAMAL_DESTINATION:-default} in $XAMAL_RUNTIME seconds"',
};

function hookSample(name: HookName): string {
  return `#!/bin/sh
# A sample ${name} hook: rename to ${name} (no .sample) to enable it. \`xamal docs hooks\` lists the
# XAMAL_* variables it gets. A non-zero exit stops the command.
set -eu
${SAMPLE_BODY[name]}
`;
}

/** What `xamal init --phoenix` needs of the project: its OTP app (mix.exs `app:`), module, and a fresh SECRET_KEY_BASE. */
export interface PhoenixProject {
  app: string;
  module: string;
  secretKeyBase: string;
}

/** Pure: the app and module a mix.exs declares, or a usage error naming what it lacks. */
export function phoenixProject(mixExs: string, secretKeyBase: string): PhoenixProject {
  const app = /\bapp:\s*:([a-z][a-z0-9_]{0,63})\b/.exec(mixExs)?.[1];
  const module = /\bdefmodule\s+([A-Z][A-Za-z0-9_]*(?:\.[A-Z][A-Za-z0-9_]*)*)\.MixProject\b/.exec(mixExs)?.[1];
  if (!app || !module) throw new XamalError('usage', `mix.exs: expected \`app: :name\` in project/0 and a \`defmodule <App>.MixProject\` (found ${[app ? `app ${app}` : 'no app', module ? `module ${module}` : 'no MixProject module'].join(', ')})`);
  return { app, module, secretKeyBase };
}

/**
 * deploy.yml for a Phoenix app: the endpoint serves (PHX_SERVER), on the host Caddy answers for
 * (PHX_HOST), health-checked at `/` (every generated Phoenix app answers there), the release's
 * migrations run before each switch (MyApp.Release.migrate/0, as `mix phx.gen.release` writes it).
 */
export function phoenixDeployYml(p: PhoenixProject): string {
  const service = p.app.replace(/_/g, '-');
  return `# Deploy configuration for a Phoenix app: \`xamal docs\` lists every section, \`xamal docs SECTION\` explains one.
# \`xamal config\` shows the result (with -d DESTINATION: merged with config/deploy.DESTINATION.yml).

service: ${service}

# Hosts to deploy to (xamal docs servers).
servers:
  web:
    - 192.168.0.1

ssh:
  user: root

# Caddy answers for this name with a certificate from Let's Encrypt and proxies to the live slot.
caddy:
  host: ${service}.example.com
  app_port: 4000

release:
  name: ${p.app}

# Every generated Phoenix app answers at /; a route of its own (e.g. /up) is cheaper to serve.
health_check:
  path: /

# PHX_SERVER starts the endpoint in a release; PHX_HOST is the name URLs are built with. The
# deployer sets PORT per slot. Secret values come from .xamal/secrets (xamal docs env).
env:
  clear:
    PHX_SERVER: "true"
    PHX_HOST: ${service}.example.com
  secret:
    - SECRET_KEY_BASE
    - DATABASE_URL

# Migrations before the new release serves (lib/${p.app}/release.ex from \`mix phx.gen.release\`).
release_command: bin/${p.app} eval "${p.module}.Release.migrate()"

# Where releases are built (xamal docs farm).
# farm:
#   url: https://farm.example.com
#   token: XAMAL_FARM_TOKEN
`;
}

/** .xamal/secrets for a Phoenix app: a SECRET_KEY_BASE made once (sessions survive deploys), DATABASE_URL to fill in. */
export function phoenixSecrets(p: PhoenixProject): string {
  return `# Secrets for the release and hooks (xamal docs secrets). Keep this file out of git.
# dotenv format: NAME=value, \${VAR} / $VAR from earlier lines or the environment, $(command) output.

# Made by \`xamal init --phoenix\`; keep it: a new one signs out every session.
SECRET_KEY_BASE=${p.secretKeyBase}

# The database the release connects to (config/runtime.exs reads it); a deploy fails naming it until it is set.
# DATABASE_URL=ecto://USER:PASS@HOST/DATABASE

# XAMAL_FARM_TOKEN=$XAMAL_FARM_TOKEN
`;
}

export function initPlan(hooksPath = '.xamal/hooks', secretsPath = '.xamal/secrets', phoenix?: PhoenixProject): InitFile[] {
  return [
    { path: 'config/deploy.yml', content: phoenix ? phoenixDeployYml(phoenix) : DEPLOY_YML_STUB, mode: 0o644 },
    { path: secretsPath, content: phoenix ? phoenixSecrets(phoenix) : SECRETS_STUB, mode: 0o600 },
    ...HOOK_NAMES.map((n) => ({ path: join(hooksPath, `${n}.sample`), content: hookSample(n), mode: 0o755 })),
  ];
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isMissingFile(err)) return false;
    throw err;
  }
}

/** Writes the plan under `root`; if any file already exists, writes nothing and names them all. */
export async function applyInit(root: string, plan: readonly InitFile[]): Promise<string[]> {
  const present: string[] = [];
  for (const f of plan) if (await exists(join(root, f.path))) present.push(f.path);
  if (present.length) throw new XamalError('conflict', `not overwriting existing files: ${present.join(', ')} (remove them first to start over)`);
  for (const f of plan) {
    await mkdir(dirname(join(root, f.path)), { recursive: true });
    await writeFile(join(root, f.path), f.content, { mode: f.mode, flag: 'wx' });
  }
  return plan.map((f) => f.path);
}
