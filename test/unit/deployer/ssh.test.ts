import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprint, keyType, knownHostEntries, sshOptionsFromConfig, verifyHostKey } from '../../../deployer/ssh.ts';
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
