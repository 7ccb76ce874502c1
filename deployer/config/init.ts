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

export function initPlan(hooksPath = '.xamal/hooks', secretsPath = '.xamal/secrets'): InitFile[] {
  return [
    { path: 'config/deploy.yml', content: DEPLOY_YML_STUB, mode: 0o644 },
    { path: secretsPath, content: SECRETS_STUB, mode: 0o600 },
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
