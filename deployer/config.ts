/**
 * The deployer's view of the environment, read once here (the only deployer file that reads
 * process.env): `<%= ENV["NAME"] %>` in deploy.yml, `$VAR` in the secrets files, and the base
 * environment of `$(command)` substitutions and hooks.
 */
export type DeployerEnv = Readonly<Record<string, string | undefined>>;

export function deployerEnv(env: NodeJS.ProcessEnv = process.env): DeployerEnv {
  return Object.freeze({ ...env });
}
