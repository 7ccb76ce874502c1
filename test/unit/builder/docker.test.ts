import { describe, expect, it } from 'vitest';
import { containerOptions, noteEngineEvent, type EngineNotes } from '../../../builder/docker.ts';

describe('containerOptions', () => {
  it('turns a spec into the engine\'s create options: env as K=V, the memory limit without swap, output attached, no TTY', () => {
    const o = containerOptions({
      image: 'img@sha256:1',
      cmd: ['mix', 'deps.get'],
      user: '1000:1000',
      env: { MIX_ENV: 'prod', LANG: 'C.UTF-8' },
      workdir: '/build/src',
      networkMode: 'none',
      binds: ['/w/src:/build/src'],
      readOnly: true,
      memoryBytes: 1024,
      nanoCpus: 2e9,
      capDrop: ['ALL'],
      labels: { 'org.xamal.job': 'b1' },
    });
    expect(o).toMatchObject({ Image: 'img@sha256:1', Cmd: ['mix', 'deps.get'], User: '1000:1000', Env: ['MIX_ENV=prod', 'LANG=C.UTF-8'], WorkingDir: '/build/src', Labels: { 'org.xamal.job': 'b1' }, AttachStdout: true, AttachStderr: true, Tty: false, OpenStdin: false });
    expect(o.HostConfig).toMatchObject({ NetworkMode: 'none', Binds: ['/w/src:/build/src'], ReadonlyRootfs: true, Memory: 1024, MemorySwap: 1024, NanoCpus: 2e9, CapDrop: ['ALL'], AutoRemove: false });
    expect('name' in o).toBe(false);
  });

  it('sets no swap limit without a memory limit, and a name only when given', () => {
    const o = containerOptions({ image: 'i', cmd: ['true'], networkMode: 'container:abc', name: 'probe-1' });
    expect(o.HostConfig && 'MemorySwap' in o.HostConfig).toBe(false);
    expect(o.Env).toEqual([]);
    expect(o.name).toBe('probe-1');
  });

  it('caps the container\'s processes with PidsLimit when the spec has one, and only then', () => {
    expect(containerOptions({ image: 'i', cmd: ['true'], networkMode: 'none', pidsLimit: 512 }).HostConfig?.PidsLimit).toBe(512);
    const o = containerOptions({ image: 'i', cmd: ['true'], networkMode: 'none' });
    expect(o.HostConfig && 'PidsLimit' in o.HostConfig).toBe(false);
  });
});

describe("the engine's events about a running container", () => {
  const event = (action: string, attributes: Record<string, string> = {}) => JSON.stringify({ status: action, id: 'c1', Type: 'container', Action: action, Actor: { ID: 'c1', Attributes: { image: 'i', ...attributes } }, time: 1 });

  it('counts its oom events and keeps the signal of each kill event, in order', () => {
    const notes: EngineNotes = { ooms: 0, kills: [] };
    for (const line of [event('kill', { signal: '15' }), event('oom'), event('kill', { signal: '9' })]) noteEngineEvent(notes, line);
    expect(notes).toEqual({ ooms: 1, kills: ['15', '9'] });
  });

  it('ignores other events, lines that are not JSON, and notes a kill without a signal as unknown', () => {
    const notes: EngineNotes = { ooms: 0, kills: [] };
    for (const line of [event('die', { exitCode: '137' }), '', '{"status":', 'null', event('kill')]) noteEngineEvent(notes, line);
    expect(notes).toEqual({ ooms: 0, kills: ['unknown'] });
  });
});
