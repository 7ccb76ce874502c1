/** The flags every deployer command takes (node:util parseArgs options). */
export const DEPLOY_FLAGS = {
  destination: { type: 'string', short: 'd' },
  'config-file': { type: 'string', short: 'c' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

export const DEPLOY_FLAGS_USAGE = '[-d DESTINATION] [-c CONFIG_FILE] [--json] [-v|-q]';

export interface DeployFlags {
  destination?: string | undefined;
  'config-file'?: string | undefined;
  json?: boolean | undefined;
  verbose?: boolean | undefined;
  quiet?: boolean | undefined;
}
