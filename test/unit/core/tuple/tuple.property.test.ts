import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ARCHES, DISTRO_LIBC, formatTarget, LIBCS, OSES, parseTarget, TUPLE_MAX_LENGTH, type Target } from '../../../../core/tuple/index.ts';

const NUM_RUNS = 1000;

// --- arbitraries built from the grammar ---
const num = fc.nat({ max: 9999 }).map(String);
const dotted = (min: number, max: number) => fc.array(num, { minLength: min, maxLength: max }).map((p) => p.join('.'));
const preRelease = fc
  .array(fc.stringMatching(/^[a-z0-9]{1,6}$/), { minLength: 1, maxLength: 3 })
  .map((p) => p.join('.'));
/** Full versions as tuples carry them: major.minor[.…][~pre]. */
const fullVersion = fc
  .tuple(dotted(2, 5), fc.option(preRelease, { nil: undefined }))
  .map(([v, pre]) => (pre === undefined ? v : `${v}~${pre}`));
const release = fc.array(fc.nat({ max: 9999 }).map(String), { minLength: 1, maxLength: 3 }).map((p) => p.join('.'));

const KNOWN_DISTROS = Object.keys(DISTRO_LIBC);
/** A distro and a libc consistent with it: known distros fix the family, unknown ones take either. */
const distroAndLibc = fc.oneof(
  fc.constantFrom(...KNOWN_DISTROS).map((distro) => ({ distro, libc: DISTRO_LIBC[distro]! })),
  fc
    .tuple(
      fc.oneof(fc.stringMatching(/^[a-z]{1,12}$/), fc.constant('constructor')).filter((d) => !Object.hasOwn(DISTRO_LIBC, d)),
      fc.constantFrom(...LIBCS),
    )
    .map(([distro, libc]) => ({ distro, libc })),
);
const qualifiers = fc
  .uniqueArray(fc.stringMatching(/^[a-z0-9][a-z0-9.~]{0,9}$/), { maxLength: 4 })
  .map((q) => [...q].sort());

const anyTarget: fc.Arbitrary<Target> = fc
  .record({
    os: fc.constantFrom(...OSES),
    arch: fc.constantFrom(...ARCHES),
    dl: distroAndLibc,
    libcVersion: dotted(1, 3),
    distroVersion: release,
    otp: fullVersion,
    elixir: fullVersion,
    qualifiers,
  })
  .map(({ dl, ...rest }) => ({ ...rest, libc: dl.libc, distro: dl.distro }));

/** Targets whose tuple fits the length limit (the vast majority). */
const validTarget = anyTarget.filter((t) => formatTarget(t).length <= TUPLE_MAX_LENGTH);

// --- strings near the grammar: valid tuples with random edits, so both outcomes are exercised ---
const EDIT_CHARS = [...'abcdefghijklmnopqrstuvwxyz0123456789._~+-', 'A', 'Z', '/', ' ', '\0', '\n', '$', "'", 'é', '😀'];
const edit = fc.record({
  kind: fc.constantFrom('insert', 'delete', 'replace'),
  at: fc.nat(),
  ch: fc.constantFrom(...EDIT_CHARS),
});
const nearTuple = fc.tuple(validTarget, fc.array(edit, { maxLength: 3 })).map(([t, edits]) => {
  let s = formatTarget(t);
  for (const e of edits) {
    const i = s.length ? e.at % (s.length + 1) : 0;
    if (e.kind === 'insert') s = s.slice(0, i) + e.ch + s.slice(i);
    else if (e.kind === 'delete') s = s.slice(0, i) + s.slice(i + 1);
    else s = s.slice(0, i) + e.ch + s.slice(i + 1);
  }
  return s;
});

const TUPLE_CHARS = /^[a-z0-9._~+-]+$/;

describe('target tuple properties', () => {
  it('parseTarget(formatTarget(t)) gives back every valid target', () => {
    fc.assert(
      fc.property(validTarget, (t) => {
        const r = parseTarget(formatTarget(t));
        expect(r).toEqual({ ok: true, value: t });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a formatted target that is too long is refused on the tuple as a whole', () => {
    fc.assert(
      fc.property(anyTarget, (t) => {
        const s = formatTarget(t);
        const r = parseTarget(s);
        if (s.length > TUPLE_MAX_LENGTH) {
          expect(r.ok).toBe(false);
          if (!r.ok) expect(r.issues).toEqual([{ path: 'tuple', message: `expected at most ${TUPLE_MAX_LENGTH} characters, got ${s.length}` }]);
        } else {
          expect(r.ok).toBe(true);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('never throws on near-valid strings, and every accepted one round-trips exactly', () => {
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(nearTuple, (s) => {
        const r = parseTarget(s);
        if (r.ok) {
          accepted++;
          expect(formatTarget(r.value)).toBe(s);
        } else {
          rejected++;
          expect(r.issues.length).toBeGreaterThan(0);
          for (const i of r.issues) {
            expect(i.path).toMatch(/^(tuple|os|arch|libc|distro|otp|elixir|qualifiers(\/\d+)?)$/);
            expect(i.message.length).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: NUM_RUNS },
    );
    // the generator must exercise both branches, or the property says little
    expect(accepted).toBeGreaterThan(20);
    expect(rejected).toBeGreaterThan(20);
  });

  it('never throws on arbitrary strings, and any accepted one round-trips exactly', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom(...EDIT_CHARS) })), (s) => {
        const r = parseTarget(s);
        if (r.ok) expect(formatTarget(r.value)).toBe(s);
        else expect(r.issues.length).toBeGreaterThan(0);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('never throws on arbitrary values of any type', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        const r = parseTarget(v);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('any accepted tuple contains only [a-z0-9._~+-] and is a single path segment', () => {
    fc.assert(
      fc.property(fc.oneof(nearTuple, validTarget.map(formatTarget)), (s) => {
        if (!parseTarget(s).ok) return;
        expect(s).toMatch(TUPLE_CHARS);
        expect(basename(s)).toBe(s);
        expect(s).not.toBe('.');
        expect(s).not.toBe('..');
        expect(s.startsWith('-')).toBe(false);
        expect(s.startsWith('~')).toBe(false);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('accepted tuples survive /bin/sh unquoted as single words', () => {
    const tuples = fc.sample(validTarget, { numRuns: 200, seed: 42 }).map(formatTarget);
    // Unquoted on purpose: the tuple alphabet must need no quoting.
    const out = execFileSync('/bin/sh', ['-c', `printf '%s\\n' ${tuples.join(' ')}`], { encoding: 'utf8' });
    expect(out.split('\n').slice(0, -1)).toEqual(tuples);
  });
});
