/** The flags every deployer command takes (node:util parseArgs options, with what `--help` says of each). */
export const DEPLOY_FLAGS = {
  destination: { type: 'string', short: 'd', valueName: 'DESTINATION', description: 'The destination: config/deploy.DESTINATION.yml merged over config/deploy.yml, and its secrets file' },
  'config-file': { type: 'string', short: 'c', valueName: 'CONFIG_FILE', description: 'The deploy configuration to read', defaultText: 'config/deploy.yml' },
  json: { type: 'boolean', description: 'Print the result as JSON on stdout' },
  verbose: { type: 'boolean', short: 'v', description: 'Say more: which files were read' },
  quiet: { type: 'boolean', short: 'q', description: 'Say less: no progress or step lines' },
} as const;

export const DEPLOY_FLAGS_USAGE = '[-d DESTINATION] [-c CONFIG_FILE] [--json] [-v|-q]';

export interface DeployFlags {
  destination?: string | undefined;
  'config-file'?: string | undefined;
  json?: boolean | undefined;
  verbose?: boolean | undefined;
  quiet?: boolean | undefined;
}
