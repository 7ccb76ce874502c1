import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { resolve, sep } from 'node:path';
import { Server, utils } from 'ssh2';
import { ed25519KeyPair } from './ssh-keys.ts';

export interface GitSshHost {
  /** `ssh://git@<address>:<port>` (127.0.0.1 unless told) — append `/<repo>.git`. */
  url: string;
  /** The line a known_hosts file needs for this host (`[127.0.0.1]:<port> ssh-ed25519 …`). */
  address: string;
  port: number;
  knownHostsLine: string;
  /** Every publickey authentication with a signature: whether it was the deploy key. */
  logins: { accepted: boolean }[];
  close: () => Promise<void>;
}

/**
 * A private git host over SSH on loopback (ssh2's server, git-upload-pack of the real git): serves
 * the bare repositories under `root` to the one deploy key `authorizedKey` (an OpenSSH public key
 * line) and to nobody else; only `git-upload-pack '<path>'` runs, inside `root`. `address`: where it
 * listens (default 127.0.0.1; a lab address of testkit/egress/netns.ts to be reached through the egress proxy).
 */
export async function serveGitOverSsh(root: string, authorizedKey: string, address = '127.0.0.1'): Promise<GitSshHost> {
  const base = resolve(root);
  const hostKey = ed25519KeyPair();
  const allowed = utils.parseKey(authorizedKey);
  if (allowed instanceof Error) throw allowed;
  const logins: { accepted: boolean }[] = [];
  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const same = ctx.key.algo === allowed.type && ctx.key.data.equals(allowed.getPublicSSH());
      // Without a signature the client only asks whether the key would do.
      if (!ctx.signature) return same ? ctx.accept() : ctx.reject(['publickey']);
      const ok = same && allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true;
      logins.push({ accepted: ok });
      return ok ? ctx.accept() : ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        acceptSession().on('exec', (accept, reject, info) => {
          const path = /^git-upload-pack '([^']+)'$/.exec(info.command)?.[1];
          const repo = path ? resolve(base, `.${path.startsWith('/') ? path : `/${path}`}`) : undefined;
          if (!repo || !repo.startsWith(base + sep)) return reject();
          const channel = accept();
          const git = spawn('git-upload-pack', [repo], { stdio: ['pipe', 'pipe', 'pipe'] });
          channel.pipe(git.stdin);
          git.stdout.pipe(channel, { end: false });
          git.stderr.pipe(channel.stderr, { end: false });
          git.on('close', (code) => {
            channel.exit(code ?? 1);
            channel.end();
          });
        });
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, address, r));
  const port = (server.address() as AddressInfo).port;
  const [type, key] = hostKey.public.trim().split(/\s+/);
  return {
    url: `ssh://git@${address}:${port}`,
    address,
    port,
    knownHostsLine: `[${address}]:${port} ${type} ${key}`,
    logins,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
