import { describe, expect, it } from 'vitest';
import { containerFailure, egressDiagnosis } from '../../../builder/checks.ts';
import type { ContainerSpec } from '../../../builder/docker.ts';

const spec = (networkMode: ContainerSpec['networkMode']): ContainerSpec => ({ image: 'i', cmd: ['mix', 'deps.get'], networkMode });
const failed = (stdout: string) => ({ code: 1, stdout, stderr: '', timedOut: false });

describe('why a deps step behind the egress proxy failed', () => {
  it.each([
    ['git://127.0.0.1:41053/greet.git', 'greet'],
    ['ssh://git@example.com/a/b.git', 'b'],
    ['git@github.com:acme/secret.git', 'secret'],
  ])('names a git dependency over %s and says to use https', (url, name) => {
    const out = `Resolving Hex dependencies...\n* Getting ${name} (${url} - origin/main)\nfatal: unable to connect to 127.0.0.1:\n** (Mix) Command "git --git-dir=.git fetch" failed`;
    expect(egressDiagnosis(out)).toBe(`git dependency ${name} (${url}) cannot be fetched: the deps step reaches the network only through the farm's HTTP(S) egress proxy, which git:// and ssh do not use; use an https:// URL whose host is in XAMAL_DEPS_ALLOW`);
  });

  it('names the URL the proxy refused, over plain HTTP and over CONNECT', () => {
    expect(egressDiagnosis("* Getting a (http://10.0.0.9/a.git)\nfatal: unable to access 'http://10.0.0.9/a.git/': The requested URL returned error: 403")).toBe('the egress proxy refused http://10.0.0.9/a.git/: its host is not in XAMAL_DEPS_ALLOW');
    expect(egressDiagnosis("fatal: unable to access 'https://evil.example/x.git/': Received HTTP code 403 from proxy after CONNECT tunnel failed, response 403")).toBe('the egress proxy refused https://evil.example/x.git/: its host is not in XAMAL_DEPS_ALLOW');
  });

  it('says nothing more for failures of other kinds, and only for steps behind the proxy', () => {
    expect(egressDiagnosis('* Getting ok (https://github.com/a/b.git - origin/main)\n** (Mix) compile error')).toBeUndefined();
    const step = (networkMode: ContainerSpec['networkMode']) => ({ kind: 'container' as const, name: 'deps', spec: spec(networkMode) });
    const out = '* Getting greet (git://h/greet.git - origin/main)';
    expect(containerFailure(step('egress'), failed(out))!.message).toMatch(/^deps failed with exit code 1: git dependency greet \(git:\/\/h\/greet\.git\)/);
    expect(containerFailure(step('none'), failed(out))!.message).toBe('deps failed with exit code 1');
  });
});
