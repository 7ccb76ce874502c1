import { join } from 'node:path';
import { LocalExecutor } from '../../core/index.ts';
import { servicesConfig } from '../../localservices/index.ts';
import type { LabDeps } from './lab.ts';

/** Where test labs keep their state (runDir: short paths, cleared by reboots) and cached roots. */
export function labDeps(say: (line: string) => void = () => {}, env: NodeJS.ProcessEnv = process.env): LabDeps {
  const s = servicesConfig(env);
  return { exec: new LocalExecutor(), cacheDir: s.cacheDir, mirror: s.debianMirror, labsDir: join(s.runDir, 'labs'), say };
}
