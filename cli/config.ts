/** Settings the CLI takes from the environment (the only place it reads process.env). */
export interface CliConfig {
  /** Print stacks of unexpected errors. */
  debug: boolean;
  /** Farm URL and token for `xamal build` (flags override). */
  farmUrl: string | undefined;
  farmToken: string | undefined;
  /** `TERM`, for the remote pty of an interactive command. */
  term: string;
}

export function cliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  return {
    debug: env.XAMAL_DEBUG !== undefined && env.XAMAL_DEBUG !== '' && env.XAMAL_DEBUG !== '0',
    farmUrl: env.XAMAL_FARM_URL || undefined,
    farmToken: env.XAMAL_FARM_TOKEN || undefined,
    term: env.TERM || 'xterm-256color',
  };
}

/** The values of the build secrets named (`builder.secrets`, `--secret`), from the environment; the names with none. */
export function buildSecretValues(names: readonly string[], env: NodeJS.ProcessEnv = process.env): { values: Record<string, string>; missing: string[] } {
  const values: Record<string, string> = {};
  const missing: string[] = [];
  for (const n of names) {
    const v = env[n];
    if (v) values[n] = v;
    else missing.push(n);
  }
  return { values, missing };
}
