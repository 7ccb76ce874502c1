import { describe, expect, it } from 'vitest';
import pkg from '../../../package.json' with { type: 'json' };
import { XAMAL_VERSION } from '../../../core/xamal-version.ts';

describe("xamal's version", () => {
  it('is the version package.json says', () => {
    expect(XAMAL_VERSION).toBe(pkg.version);
  });
});
