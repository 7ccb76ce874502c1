import { resolveNames, servicesConfig, servicesDown, servicesStatus, servicesUp } from '../../localservices/index.ts';
import { actionError, flagCommand } from '../args.ts';

const USAGE = 'xamal farm services up|down|status [redis|dockerd|s3|registry …] [--json]';

export default flagCommand({
  usage: USAGE,
  description: 'With no NAME: every service. status exits 3 when one is not ready.',
  flags: { json: { type: 'boolean', description: 'Print the result as JSON' } },
  examples: [
    ['xamal farm services up', 'Install what is missing and start Redis, dockerd, the S3 stand-in and the registry'],
    ['xamal farm services status redis', 'Whether Redis runs and answers, its pid and log'],
  ],
}, async ({ positionals, values }, io) => {
  const [action, ...names] = positionals;
  const config = servicesConfig();
  const services = resolveNames(names);
  const say = (line: string) => io.err(line);
  switch (action) {
    case 'up': {
      const r = await servicesUp(config, services, say);
      if (values.json) io.out(JSON.stringify(r));
      else io.out(`up: ${services.join(', ')} (started: ${r.started.join(', ') || 'none'}; already up: ${r.alreadyUp.join(', ') || 'none'})`);
      return 0;
    }
    case 'down': {
      const stopped = await servicesDown(config, services, say);
      if (values.json) io.out(JSON.stringify({ stopped }));
      else io.out(`down: stopped ${stopped.join(', ') || 'nothing (none was running)'}`);
      return 0;
    }
    case 'status': {
      const st = await servicesStatus(config, services);
      if (values.json) io.out(JSON.stringify(st));
      else for (const s of st) io.out(`${s.name.padEnd(9)} ${s.running ? (s.ready ? 'up' : 'running, not ready') : 'down'}${s.pid ? ` pid ${s.pid}` : ''}  log ${s.log}`);
      return st.every((s) => s.ready) ? 0 : 3;
    }
    default:
      throw actionError(action, USAGE);
  }
});
