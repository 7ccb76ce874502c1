import { z } from 'zod';
import { AppNameSchema, issuesFromZod, ValidationError } from '../../core/index.ts';
import { gitRemoteParts } from '../../core/contracts/git-url.ts';

/** A token's name as XAMAL_FARM_TOKENS names it (`admin` is the admin token). */
const TokenNameSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'expected a token name from XAMAL_FARM_TOKENS, like ci');

/** A repository an app builds from: the git URL a build request names (compared without a trailing `/` or `.git`). */
const RepositorySchema = z.string().min(1).max(2048).regex(/^\S+$/, 'expected a git URL');

/** A private git dependency fetched over ssh with the farm's deploy keys: `git@host:owner/repo.git` or `ssh://[user@]host[:port]/path`. */
const GitDependencySchema = RepositorySchema.refine((u) => gitRemoteParts(u)?.transport === 'ssh', {
  message: 'expected an ssh git URL like git@github.com:acme/billing.git or ssh://git@git.example.com:2222/acme/billing.git (the farm fetches private dependencies over ssh)',
});

/**
 * One app's owners: the repositories its builds come from and the tokens allowed to build and cancel
 * it (tokens with the admin scope always are). `archives`: whether those tokens may also build it
 * from an uploaded archive, which no repository vouches for (default false). `git_dependencies`: the
 * private repositories its builds may fetch over ssh with the farm's deploy keys (its mix.lock must
 * name them too); none by default, so one app's build never reads another app's repositories.
 */
export const AppOwnersSchema = z
  .object({
    repositories: z.array(RepositorySchema).max(32).default([]),
    tokens: z.array(TokenNameSchema).max(64).default([]),
    archives: z.boolean().default(false),
    git_dependencies: z.array(GitDependencySchema).max(64).default([]),
  })
  .strict()
  .refine((a) => a.repositories.length > 0 || a.archives, { message: 'expected at least one repository, or archives: true', path: ['repositories'] });
export type AppOwners = z.output<typeof AppOwnersSchema>;

/** XAMAL_APPS_FILE: `{"apps": {"hello": {"repositories": ["https://…/hello.git"], "tokens": ["ci"]}}}`. */
export const AppsFileSchema = z
  .object({ apps: z.record(AppNameSchema, AppOwnersSchema) })
  .strict();
export type AppRegistry = z.output<typeof AppsFileSchema>;

/** The registry in an apps file's JSON; every problem reported at once with its path. */
export function parseAppRegistry(json: unknown): AppRegistry {
  const r = AppsFileSchema.safeParse(json);
  if (!r.success) throw new ValidationError(issuesFromZod(r.error), 'invalid app registry (XAMAL_APPS_FILE)');
  return r.data;
}
