import { XamalError, type Arch } from '../../core/index.ts';
import { IMAGE_PROBE_SCRIPT, parseImageProbe, type ImageFacts } from '../../images/facts.ts';
import type { DockerEngine } from '../docker.ts';

/**
 * Runs the probe in an image (no network) and reads its facts; the image must run as `arch` (a
 * foreign arch needs emulation set up first). `what` names the image in errors.
 */
export async function probeImage(docker: DockerEngine, image: string, arch: Arch, what: string): Promise<ImageFacts> {
  const probe = await docker.run({ image, cmd: ['/bin/sh', '-c', IMAGE_PROBE_SCRIPT], networkMode: 'none', timeoutMs: 300_000 });
  if (probe.code !== 0) throw new XamalError('external', `${what}: probe exited ${probe.code}: ${probe.stderr.trim()}`);
  const facts = parseImageProbe(probe.stdout);
  if (facts.arch !== arch) throw new XamalError('external', `${what}: the image runs as ${facts.arch}, expected ${arch} (is emulation set up?)`);
  return facts;
}
