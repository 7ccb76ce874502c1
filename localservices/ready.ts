import { request } from 'node:http';
import { connect } from 'node:net';
import type { ReadyCheck } from './catalog.ts';

/** One readiness probe, bounded by `timeoutMs`; true when the service answers as expected. */
export function checkReady(check: ReadyCheck, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (v: boolean) => {
      clearTimeout(timer);
      resolve(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    if (check.kind === 'redis-ping') {
      const sock = connect({ host: '127.0.0.1', port: check.port });
      let buf = '';
      const pw = check.password;
      const auth = pw ? `*2\r\n$4\r\nAUTH\r\n$${Buffer.byteLength(pw)}\r\n${pw}\r\n` : '';
      const replies = pw ? 2 : 1;
      sock.on('connect', () => sock.write(`${auth}*1\r\n$4\r\nPING\r\n`));
      sock.on('data', (d) => {
        buf += d.toString();
        const lines = buf.split('\r\n');
        if (lines.length > replies) {
          sock.destroy();
          done(lines.slice(0, replies).join(' ') === (pw ? '+OK +PONG' : '+PONG'));
        }
      });
      sock.on('error', () => done(false));
      return;
    }
    const url = new URL(check.url);
    const req = request(
      { host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, socketPath: check.socketPath, method: 'GET', agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (body.length < 65536) body += c;
        });
        res.on('end', () => done(check.expect(res.statusCode ?? 0, body)));
        res.on('error', () => done(false));
      },
    );
    req.on('error', () => done(false));
    req.end();
  });
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => {
      sock.destroy();
      resolve(false);
    }, 1_000);
    sock.on('connect', () => {
      clearTimeout(t);
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}
