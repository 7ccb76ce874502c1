import { XamalError, type Issue } from '../core/index.ts';
import type { TokenEntry } from './auth.ts';
import type { AppRegistry } from './schemas/apps.ts';
import type { GithubHooks } from './schemas/github.ts';

/**
 * Apps have owners (XAMAL_APPS_FILE): each app is registered to the repositories its builds come
 * from and to the tokens allowed to build and cancel it. Without a registry the farm is open: every
 * build token builds and cancels every app, from any repository (a farm with one team's tokens).
 */

/** Who asks: a bearer token, or a verified GitHub webhook delivery (whose repository the hooks file maps to an app). */
export type Caller = { kind: 'token'; token: Pick<TokenEntry, 'name' | 'scopes'> } | { kind: 'webhook'; repository: string };

/** What a build names as its source: a git URL, or an uploaded archive. */
export type RequestedSource = { git: string } | { archive: string };

/** Pure: a git URL as repositories are compared: scheme and host lowercased, no trailing `/` or `.git`. */
export function repositoryKey(url: string): string {
  const trimmed = url.trim().replace(/\/+$/, '').replace(/\.git$/, '');
  return trimmed.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/]+)/i, (m) => m.toLowerCase());
}

const isAdmin = (c: Caller) => c.kind === 'token' && c.token.scopes.includes('admin');

function checkToken(app: string, owners: AppRegistry['apps'][string], caller: Caller, action: string): void {
  if (caller.kind !== 'token' || isAdmin(caller) || owners.tokens.includes(caller.token.name)) return;
  const allowed = owners.tokens.length ? `tokens allowed: ${owners.tokens.join(', ')}` : 'only admin tokens are allowed';
  throw new XamalError('forbidden', `token ${caller.token.name} may not ${action} app ${app} (${allowed}; XAMAL_APPS_FILE)`);
}

function registered(registry: AppRegistry, app: string): AppRegistry['apps'][string] {
  const owners = Object.hasOwn(registry.apps, app) ? registry.apps[app] : undefined;
  if (!owners) throw new XamalError('forbidden', `app ${app} is not registered on this farm (XAMAL_APPS_FILE); an admin registers it with its repositories and tokens`);
  return owners;
}

/**
 * Pure: refuses (403, naming the app and what it is registered to) a build of `app` from `source`
 * by `caller`: an unregistered app, a token not allowed for it, a repository it is not registered
 * to (admin tokens included: an admin re-registers in the file), an archive where the app takes none.
 */
export function checkMayBuild(registry: AppRegistry | undefined, app: string, source: RequestedSource, caller: Caller): void {
  if (!registry) return;
  const owners = registered(registry, app);
  checkToken(app, owners, caller, 'build');
  if ('archive' in source) {
    if (!owners.archives) throw new XamalError('forbidden', `app ${app} is built from its repositories only (${owners.repositories.join(', ')}); an uploaded archive needs "archives": true in XAMAL_APPS_FILE`);
    return;
  }
  const key = repositoryKey(source.git);
  if (owners.repositories.some((r) => repositoryKey(r) === key)) return;
  const where = owners.repositories.length ? `registered to ${owners.repositories.join(', ')}` : 'built from uploaded archives only';
  throw new XamalError('forbidden', `app ${app} is ${where}; this build names ${source.git} (XAMAL_APPS_FILE)`);
}

/** Pure: refuses (403) a cancel of a build of `app` by a token not allowed for it. */
export function checkMayCancel(registry: AppRegistry | undefined, app: string | undefined, caller: Caller): void {
  if (!registry || isAdmin(caller)) return;
  if (app === undefined) throw new XamalError('forbidden', 'this build names no app; only an admin token cancels it');
  checkToken(app, registered(registry, app), caller, 'cancel builds of');
}

/**
 * Pure: what in the settings disagrees, found at start: a token name no token has, a webhook for an
 * app that is not registered or whose git URL is not one of the app's repositories.
 */
export function registryProblems(registry: AppRegistry, tokenNames: readonly string[], hooks?: GithubHooks): Issue[] {
  const issues: Issue[] = [];
  for (const [app, owners] of Object.entries(registry.apps)) {
    owners.tokens.forEach((t, i) => {
      if (!tokenNames.includes(t)) issues.push({ path: `XAMAL_APPS_FILE/apps/${app}/tokens/${i}`, message: `no token is named ${t} (XAMAL_FARM_TOKENS names: ${tokenNames.join(', ')})` });
    });
  }
  for (const [repo, hook] of Object.entries(hooks?.repos ?? {})) {
    const owners = Object.hasOwn(registry.apps, hook.app) ? registry.apps[hook.app] : undefined;
    if (!owners) issues.push({ path: `XAMAL_GITHUB_HOOKS_FILE/repos/${repo}/app`, message: `app ${hook.app} is not registered in XAMAL_APPS_FILE` });
    else if (!owners.repositories.some((r) => repositoryKey(r) === repositoryKey(hook.git))) {
      issues.push({ path: `XAMAL_GITHUB_HOOKS_FILE/repos/${repo}/git`, message: `${hook.git} is not a repository of app ${hook.app} in XAMAL_APPS_FILE` });
    }
  }
  return issues;
}
