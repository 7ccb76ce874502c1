/** What the test kit reads from its own environment: the PATH it hands to the CLI processes it starts. */
export function cliBaseEnv(): { PATH: string } {
  return { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
}
