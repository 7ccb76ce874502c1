import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { PROJECT_ROOT } from '../localservices/index.ts';

/** Debian's Chromium (the test kit installs it with the other test packages: testkit/global-setup.ts). */
export const CHROMIUM = '/usr/bin/chromium';
export const BROWSER_PACKAGES = ['chromium'];

/**
 * Headless, as root, and quiet: without the background-networking flags Chromium reaches for Google's
 * hosts at every start, traffic beyond loopback that tests never send. Playwright gives each launch a
 * new empty profile (its own --user-data-dir).
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Debian's Chromium driven by playwright-core. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
}

/** A folder for what a test keeps for people to look at (screenshots): `.state/test-artifacts/<name>/`, made when missing. */
export async function testArtifactsDir(name: string): Promise<string> {
  const dir = join(PROJECT_ROOT, '.state', 'test-artifacts', name);
  await mkdir(dir, { recursive: true });
  return dir;
}
