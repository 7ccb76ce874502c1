import { z } from 'zod';
import { RELEASE_VERSION } from './tuple/version.ts';

/**
 * Names that end up in object keys, paths and shell words. Each is checked against a narrow
 * character set before it touches the store, the filesystem or a shell.
 */
export const AppNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,63}$/, 'expected an Elixir app name: lowercase letter, then [a-z0-9_], at most 64 characters');

/** A release version: a git commit SHA (7–40 hex) or a mix.exs version (`1.2.3`, `1.2.3-rc.1+build.5`). */
export const VersionNameSchema = z
  .string()
  .regex(
    new RegExp(`^(?:[0-9a-f]{7,40}|${RELEASE_VERSION})$`),
    'expected a commit SHA (7-40 lowercase hex) or a version like 1.2.3',
  );

export const ReleaseNameSchema = AppNameSchema;
