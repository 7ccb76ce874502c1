import { describe, expect, it } from 'vitest';
import { ANY_GIT_TRANSPORT, gitUrlForDisplay, gitUrlProblem, REMOTE_GIT_ONLY, unreadableRemote } from '../../../../core/contracts/git-url.ts';

const LOCAL = { allowLocal: true, allowHttp: false };
const HTTP = { allowLocal: false, allowHttp: true };

describe('gitUrlProblem', () => {
  it('accepts https, ssh:// and scp-like ssh remotes under the default policy', () => {
    for (const url of [
      'https://github.com/acme/hello.git',
      'https://git.example.com:8443/a/b',
      'https://[2001:db8::1]/a/b.git',
      'ssh://git@github.com/acme/hello.git',
      'ssh://git@github.com:2222/acme/hello.git',
      'git+ssh://git@host/x.git',
      'git@github.com:acme/hello.git',
      'deploy@10.0.0.5:repos/app.git',
    ]) {
      expect(gitUrlProblem(url, REMOTE_GIT_ONLY), url).toBeUndefined();
    }
  });

  it('refuses file:// and absolute paths unless local sources are allowed, naming XAMAL_GIT_ALLOW_LOCAL', () => {
    for (const url of ['file:///srv/repos/app.git', 'file://localhost/srv/app.git', '/srv/repos/app.git']) {
      expect(gitUrlProblem(url, REMOTE_GIT_ONLY), url).toMatch(/file:\/\/ URLs and local paths are refused.*XAMAL_GIT_ALLOW_LOCAL=1/);
      expect(gitUrlProblem(url, HTTP), url).toMatch(/XAMAL_GIT_ALLOW_LOCAL/);
      expect(gitUrlProblem(url, LOCAL), url).toBeUndefined();
    }
    expect(gitUrlProblem('file://otherhost/srv/app.git', LOCAL)).toMatch(/file:\/\/ URLs name no host/);
  });

  it('refuses http:// and git:// unless XAMAL_GIT_ALLOW_HTTP allows them', () => {
    for (const url of ['http://git.example/a.git', 'git://git.example/a.git']) {
      expect(gitUrlProblem(url, REMOTE_GIT_ONLY), url).toMatch(/unencrypted and refused: use https:\/\/ or ssh \(XAMAL_GIT_ALLOW_HTTP=1/);
      expect(gitUrlProblem(url, LOCAL), url).toMatch(/XAMAL_GIT_ALLOW_HTTP/);
      expect(gitUrlProblem(url, HTTP), url).toBeUndefined();
    }
  });

  it('refuses credentials in a URL under every policy, pointing at deploy keys, without repeating them', () => {
    for (const url of ['https://user:ghp_secret@github.com/a/b.git', 'https://ghp_secret@github.com/a/b.git', 'http://u:p%40ss@h/x', 'ssh://git:hunter2@host/x.git', 'git://u:p@h/x']) {
      const problem = gitUrlProblem(url, ANY_GIT_TRANSPORT);
      expect(problem, url).toMatch(/must not carry credentials.*deploy key or a git credential helper/);
      expect(problem).not.toMatch(/secret|hunter2|p%40ss/);
    }
  });

  it('refuses anything git or ssh could read as an option: a leading -, a host or user starting with - (also %-encoded)', () => {
    for (const url of ['-u@h:x', '--upload-pack=touch /tmp/x', 'u@-h:x', 'ssh://-oProxyCommand=id@h/x', 'ssh://-h/x', 'https://-h/x', 'ssh://%2DoProxyCommand=id@h/x']) {
      expect(gitUrlProblem(url, ANY_GIT_TRANSPORT), url).toMatch(/"-"/);
    }
  });

  it('refuses unknown transports, remote helpers, spaces, control characters and strings that are no URL', () => {
    const cases: [string, RegExp][] = [
      ['ext::sh -c touch% /tmp/pwned', /without spaces/],
      ['ext::sh', /expected a git URL/],
      ['fd::3', /expected a git URL/],
      ['a@ext::sh', /expected a git URL/],
      ['ftp://host/x.git', /transport ftp:\/\/ is not supported/],
      ['javascript://x', /transport javascript:\/\/ is not supported/],
      ['https://host/a\nb', /control characters/],
      ['https://host/a\u0000', /control characters/],
      ['ssh:///no-host', /no host/],
      ['relative/path', /expected a git URL/],
      ['host:path', /expected a git URL/],
      ['', /expected a git URL/],
    ];
    for (const [url, want] of cases) expect(gitUrlProblem(url, ANY_GIT_TRANSPORT), JSON.stringify(url)).toMatch(want);
  });
});

describe('gitUrlForDisplay and unreadableRemote', () => {
  it('drop the user-info of a scheme URL and say only "unreachable or not found"', () => {
    expect(gitUrlForDisplay('https://u:tok@h/x.git')).toBe('https://h/x.git');
    expect(gitUrlForDisplay('git@github.com:a/b.git')).toBe('git@github.com:a/b.git');
    expect(unreadableRemote('https://u:tok@127.0.0.1:6379/x')).toBe('could not read the repository at https://127.0.0.1:6379/x: unreachable or not found');
  });
});
