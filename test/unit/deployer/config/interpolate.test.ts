import { describe, expect, it } from 'vitest';
import { interpolate } from '../../../../deployer/config/interpolate.ts';

describe('interpolate', () => {
  it('replaces ENV and env references with either quote style and spacing', () => {
    const r = interpolate(`a: <%= ENV["A"] %>\nb: <%=env['B']%>-<%= ENV[ "A" ] %>`, { A: '1', B: '2' }, 'f.yml');
    expect(r).toEqual({ text: 'a: 1\nb: 2-1', issues: [], used: ['A', 'B'] });
  });

  it('treats an empty variable as set', () => {
    expect(interpolate('a: "<%= ENV["E"] %>"', { E: '' }, 'f.yml').text).toBe('a: ""');
  });

  it('reports each unset variable and each non-ENV tag with file and line', () => {
    const r = interpolate(`a: <%= ENV["NOPE"] %>\nb: <% if true %>\nc: <%= ENV.fetch("X") %>\nd: <%= ENV["constructor"] %>`, {}, 'deploy.yml');
    expect(r.issues).toEqual([
      { path: 'deploy.yml:1', message: 'environment variable NOPE is not set (used in deploy.yml)' },
      { path: 'deploy.yml:2', message: 'unsupported template <% if true %>: only <%= ENV["NAME"] %> is understood' },
      { path: 'deploy.yml:3', message: 'unsupported template <%= ENV.fetch("X") %>: only <%= ENV["NAME"] %> is understood' },
      { path: 'deploy.yml:4', message: 'environment variable constructor is not set (used in deploy.yml)' },
    ]);
  });
});
