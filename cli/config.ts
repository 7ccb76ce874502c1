/** Settings the CLI takes from the environment (the only place it reads process.env). */
export interface CliConfig {
  /** Print stacks of unexpected errors. */
  debug: boolean;
}

export function cliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  return { debug: env.XAMAL_DEBUG !== undefined && env.XAMAL_DEBUG !== '' && env.XAMAL_DEBUG !== '0' };
}
