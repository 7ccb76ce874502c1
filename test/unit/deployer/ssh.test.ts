import { createHmac, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Terminal } from '../../../deployer/remote.ts';
import { attachTerminal, fingerprint, keyType, knownHostEntries, sshOptionsFromConfig, verifyHostKey } from '../../../deployer/ssh.ts';
import { sensitive } from '../../../core/index.ts';

/** An SSH public key blob: string type, then key material. */
function blob(type: string, material = randomBytes(32)): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  const mlen = Buffer.alloc(4);
  mlen.writeUInt32BE(material.length);
  return Buffer.concat([len, t, mlen, material]);
}
const line = (hosts: string, b: Buffer) => `${hosts} ${keyType(b)} ${b.toString('base64')}`;

describe('known_hosts', () => {
  const a = blob('ssh-ed25519');
  const b = blob('ssh-ed25519');

  it('finds entries by plain name, comma lists, [host]:port, wildcards and hashed names; skips comments and negations', () => {
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('10.0.0.9').digest('base64')}`;
    const text = [
      '# comment',
      line('web1,10.0.0.1', a),
      line('[10.0.0.2]:2222', b),
      line('*.internal,!db.internal', a),
      line(hashed, b),
    ].join('\n');
    expect(knownHostEntries(text, '10.0.0.1', 22).map((e) => e.blob)).toEqual([a]);
    expect(knownHostEntries(text, '10.0.0.2', 22)).toEqual([]);
    expect(knownHostEntries(text, '10.0.0.2', 2222).map((e) => e.blob)).toEqual([b]);
    expect(knownHostEntries(text, 'app.internal', 22).map((e) => e.blob)).toEqual([a]);
    expect(knownHostEntries(text, 'db.internal', 22)).toEqual([]);
    expect(knownHostEntries(text, '10.0.0.9', 22).map((e) => e.blob)).toEqual([b]);
  });

  it('accepts a known key, refuses a changed one naming both fingerprints, and an unknown one unless trusting new hosts', () => {
    const known = knownHostEntries(line('h', a), 'h', 22);
    expect(verifyHostKey({ host: 'h', port: 22, blob: a, known, trustNewHosts: false })).toEqual({ ok: true });
    const changed = verifyHostKey({ host: 'h', port: 22, blob: b, known, trustNewHosts: true });
    expect(changed.ok).toBe(false);
    expect(!changed.ok && changed.reason).toContain(fingerprint(b));
    expect(!changed.ok && changed.reason).toContain(fingerprint(a));
    const unknown = verifyHostKey({ host: 'n', port: 22, blob: b, known: [], trustNewHosts: false });
    expect(!unknown.ok && unknown.reason).toMatch(/unknown host n: it presents ssh-ed25519 SHA256:/);
    expect(verifyHostKey({ host: 'n', port: 22, blob: b, known: [], trustNewHosts: true })).toEqual({ ok: true, learn: true });
  });

  it('checks a pinned fingerprint instead of known_hosts, and never accepts a revoked key', () => {
    expect(verifyHostKey({ host: 'h', port: 22, blob: a, pinned: fingerprint(a), known: [], trustNewHosts: false })).toEqual({ ok: true });
    expect(verifyHostKey({ host: 'h', port: 22, blob: a, pinned: `${fingerprint(b)}=`, known: [], trustNewHosts: true }).ok).toBe(false);
    const revoked = knownHostEntries(`@revoked * ${keyType(a)} ${a.toString('base64')}\n${line('h', a)}`, 'h', 22);
    expect(verifyHostKey({ host: 'h', port: 22, blob: a, known: revoked, trustNewHosts: true }).ok).toBe(false);
  });
});

describe('ssh options from deploy.yml', () => {
  it('expands ~ in key and known_hosts paths, uses the agent unless keys_only, and converts the timeout to ms', () => {
    const ssh = { user: 'deploy', port: 2222, keys: ['~/.ssh/id_ed25519'], keyData: [sensitive('k')], keysOnly: false, proxy: undefined, connectTimeout: 5, knownHosts: undefined, hostKeys: {}, logLevel: 'fatal' as const, config: true };
    const o = sshOptionsFromConfig(ssh, { HOME: '/home/me', SSH_AUTH_SOCK: '/run/agent' }, false);
    expect(o).toMatchObject({ user: 'deploy', port: 2222, keys: ['/home/me/.ssh/id_ed25519'], agent: '/run/agent', connectTimeoutMs: 5000, knownHostsPath: '/home/me/.ssh/known_hosts', trustNewHosts: false });
    expect(sshOptionsFromConfig({ ...ssh, keysOnly: true }, { HOME: '/h', SSH_AUTH_SOCK: '/run/agent' }, false).agent).toBeUndefined();
  });
});

/** A channel as ssh2 hands it over, recording what is done to it. */
class FakeChannel extends EventEmitter {
  stderr = new EventEmitter();
  written: string[] = [];
  calls: string[] = [];
  write(b: Buffer | string) {
    this.written.push(String(b));
    return true;
  }
  end() {
    this.calls.push('end');
  }
  setWindow(rows: number, cols: number) {
    this.calls.push(`window ${rows}x${cols}`);
  }
  signal(name: string) {
    this.calls.push(`signal ${name}`);
  }
  close() {
    this.calls.push('close');
    this.emit('close');
  }
  finish(code: number | null, signal?: string) {
    this.emit('exit', code, signal);
    this.emit('close');
  }
}

function fakeTerminal(pty: boolean) {
  const input = new PassThrough();
  const output = new PassThrough();
  const errors = new PassThrough();
  const events: string[] = [];
  let rows = 24;
  const resize: (() => void)[] = [];
  const signals: ((s: 'SIGINT' | 'SIGTERM' | 'SIGHUP') => void)[] = [];
  const terminal: Terminal = {
    input,
    output,
    errors,
    term: 'xterm',
    size: () => (pty ? { rows, cols: 80 } : undefined),
    setRaw: (on) => void events.push(on ? 'raw' : 'cooked'),
    onResize: (fn) => (resize.push(fn), () => void resize.splice(resize.indexOf(fn), 1)),
    onSignal: (fn) => (signals.push(fn), () => void signals.splice(signals.indexOf(fn), 1)),
  };
  const text = (s: PassThrough) => String(s.read() ?? '');
  return { terminal, input, events, resize, signals, out: () => text(output), err: () => text(errors), setRows: (r: number) => (rows = r) };
}

describe('an interactive command attached to the terminal', () => {
  const attach = (ch: FakeChannel, t: Terminal, pty: boolean) => attachTerminal(ch as never, t, pty, 'web1: app exec -i');

  it('with a pty: raw mode on, keys and output pass through, a resize is sent, and at the end raw mode is off and no listener is left', async () => {
    const ch = new FakeChannel();
    const t = fakeTerminal(true);
    const done = attach(ch, t.terminal, true);
    expect(t.events).toEqual(['raw']);
    t.input.write('1+1\r');
    await new Promise((r) => setImmediate(r));
    expect(ch.written).toEqual(['1+1\r']);
    ch.emit('data', Buffer.from('2\r\n'));
    expect(t.out()).toBe('2\r\n');
    t.setRows(50);
    t.resize.forEach((f) => f());
    expect(ch.calls).toEqual(['window 50x80']);
    ch.finish(3);
    expect(await done).toBe(3);
    expect(t.events).toEqual(['raw', 'cooked']);
    expect([t.resize.length, t.signals.length, t.input.listenerCount('data')]).toEqual([0, 0, 0]);
  });

  it('without a pty: no raw mode, stderr apart, the end of stdin is sent as EOF, a remote signal is 128+n', async () => {
    const ch = new FakeChannel();
    const t = fakeTerminal(false);
    const done = attach(ch, t.terminal, false);
    t.input.end('data\n');
    await new Promise((r) => setImmediate(r));
    expect(ch.written).toEqual(['data\n']);
    expect(ch.calls).toEqual(['end']);
    ch.stderr.emit('data', Buffer.from('oops\n'));
    expect(t.err()).toBe('oops\n');
    ch.finish(null, 'TERM');
    expect(await done).toBe(143);
    expect(t.events).toEqual([]);
  });

  it('a signal to xamal is passed on, ends the session with 128+n, and the terminal is restored', async () => {
    const ch = new FakeChannel();
    const t = fakeTerminal(true);
    const done = attach(ch, t.terminal, true);
    t.signals.forEach((f) => f('SIGINT'));
    expect(await done).toBe(130);
    expect(ch.calls).toEqual(['signal INT', 'close']);
    expect(t.events).toEqual(['raw', 'cooked']);
  });

  it('a connection lost with no exit status is an error, and the terminal is restored', async () => {
    const ch = new FakeChannel();
    const t = fakeTerminal(true);
    const done = attach(ch, t.terminal, true);
    ch.emit('close');
    await expect(done).rejects.toThrow('web1: app exec -i: SSH connection lost before it finished');
    expect(t.events).toEqual(['raw', 'cooked']);
  });
});
