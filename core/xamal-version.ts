/**
 * xamal's own version, as package.json says (test/unit/core/xamal-version.test.ts keeps the two
 * equal): what the farm names itself as in the documents it writes (the SBOM's tool).
 */
export const XAMAL_VERSION = '0.1.0';
