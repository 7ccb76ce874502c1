import pkg from '../package.json' with { type: 'json' };

/** xamal's version (package.json): `xamal version`, and what the farm's provenance names as its builder's version. */
export const XAMAL_VERSION: string = pkg.version;
