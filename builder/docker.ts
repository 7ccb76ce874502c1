import Docker from 'dockerode';
import { XamalError } from '../core/index.ts';

/** The only module that imports dockerode. Everything else depends on the functions it exports. */
export interface DockerEngine {
  /** Engine version and API version, e.g. `{version: '20.10.24+dfsg1', apiVersion: '1.41'}`. */
  version(): Promise<{ version: string; apiVersion: string; os: string; arch: string }>;
  ping(): Promise<boolean>;
}

export function dockerEngine(socketPath: string): DockerEngine {
  const docker = new Docker({ socketPath });
  return {
    async version() {
      try {
        const v = await docker.version();
        return { version: v.Version, apiVersion: v.ApiVersion, os: v.Os, arch: v.Arch };
      } catch (err) {
        throw new XamalError('unavailable', `docker engine at ${socketPath} did not answer: ${(err as Error).message}`, { cause: err });
      }
    },
    async ping() {
      try {
        const r: unknown = await docker.ping();
        return String(r) === 'OK';
      } catch {
        return false;
      }
    },
  };
}
