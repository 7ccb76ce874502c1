import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { hashToken } from '../../../api/auth.ts';
import type { BuildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { hostArch } from '../../../builder/images/context.ts';
import { servicesConfig } from '../../../localservices/index.ts';
import { localStore } from '../../../store/local.ts';
import { launchBrowser, testArtifactsDir } from '../../../testkit/browser.ts';
import { helloMixExsWithReleaseStep, helloRepo } from '../../../testkit/example-repo.ts';
import { startTestFarm, type TestFarm } from '../../../testkit/farm.ts';
import { services, testPrefix } from '../../../testkit/integration.ts';

/**
 * Issue 21 item 6's acceptance: the builds page in Debian's Chromium against a real farm (API,
 * BullMQ worker, S3 stand-in): a person enters a read token, sees the build listed, opens it, watches
 * its log grow while it runs, and downloads its artifact, whose sha256 is the API's.
 */

const ADMIN = 'a'.repeat(40);
const READ = `viewer-${randomBytes(12).toString('hex')}`;

/** What the page showed when its first log line appeared (recorded in the page by a MutationObserver). */
interface FirstLine {
  at: number;
  text: string;
  state: string;
}

describe('the builds page in a real browser', () => {
  let farm: TestFarm;
  let browser: Browser;
  let tmp: string;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'xamal-builds-page-'));
    const tokens = [{ name: 'viewer', scopes: ['read'] as const, sha256: hashToken(READ) }];
    farm = await startTestFarm({ services: services(), prefix: testPrefix('builds-page'), host: '127.0.0.1', token: ADMIN, tokens: [...tokens], workDir: tmp, cacheDir: join(servicesConfig().cacheDir, 'test-builds') });
    browser = await launchBrowser();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await farm?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a log longer than one stream carries arrives whole, once and in order (each cut stream read on from its marker); a wrong token asks again', { timeout: 120_000 }, async () => {
    // An API of its own with a build whose log grows past the stream's byte limit several times while it runs.
    const B = `b${'5'.repeat(32)}`;
    const t0 = Date.now();
    const LINES = Array.from({ length: 120 }, (_, i) => `line ${String(i).padStart(3, '0')} <i>${'x'.repeat(60)}</i>`);
    const written = () => Math.min(LINES.length, Math.floor((Date.now() - t0) / 25));
    const state = () => (written() === LINES.length && Date.now() - t0 > 4_000 ? 'completed' : 'active');
    const subject = { app: 'hello', tuple: 'linux-x86_64-gnu2.36-debian12-otp25.2.3-elixir1.14.0', version: 'c'.repeat(40), commit: 'c'.repeat(40), mixEnv: 'prod', release: 'hello' };
    const builds: BuildService = {
      submit: async () => ({ buildSet: 's', builds: [], unresolved: [] }),
      status: async (id) => (id === B ? { id, arch: 'x86_64', state: state(), phase: 'compile', attemptsMade: 1, createdAt: t0, startedAt: t0, ...subject } : undefined),
      logs: async (id, start = 0) => (id === B ? { lines: LINES.slice(start, written()), count: written() } : undefined),
      cancel: async () => 'unknown',
      buildSet: async () => undefined,
      list: async () => ({ builds: [] }),
    };
    const app = await buildApp({ token: ADMIN, logLevel: 'silent', maxLogResponseBytes: 2_000, services: { health: healthService({}), ...storeBackedServices(localStore(join(tmp, 'no-store'))), builds } });
    const page = await browser.newPage();
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      await page.goto(`${url}/builds/#build/${B}`);
      await page.locator('#token').fill('not-a-token-of-this-farm');
      await page.locator('#login-form button[type=submit]').click();
      await page.locator('#login-error').filter({ hasText: 'The farm refused the token: missing or wrong bearer token' }).waitFor({ timeout: 15_000 });
      expect(await page.evaluate(() => sessionStorage.getItem('xamal.farmToken'))).toBeNull();
      await page.locator('#token').fill(ADMIN);
      await page.locator('#login-form button[type=submit]').click();
      await page.locator('#log-state').filter({ hasText: '(completed)' }).waitFor({ timeout: 60_000 });
      expect(await page.locator('#log .line').allTextContents()).toEqual(LINES.map((l) => `${l}\n`));
    } finally {
      await page.close();
      await app.close();
    }
  });

  it('loads without a token, while the JSON API answers 401 without one', async () => {
    expect((await fetch(`${farm.url}/builds/`)).status).toBe(200);
    expect((await fetch(`${farm.url}/builds/builds.js`)).status).toBe(200);
    expect((await fetch(`${farm.url}/v1/builds`)).status).toBe(401);
  });

  it('lists a submitted build with its app, commit, target and state; its log grows in the page while it runs; then its artifact, whose sha256 is the API\'s, downloads', { timeout: 900_000 }, async () => {
    // A commit of this run (so no stored artifact answers it at once), whose release step waits a while: the build runs long enough to be watched.
    const run = randomBytes(4).toString('hex');
    const repo = await helloRepo(join(tmp, 'hello'), {
      'mix.exs': helloMixExsWithReleaseStep('IO.puts("builds page test: release step waits"); Process.sleep(6_000)'),
      'lib/hello/page_run.ex': `defmodule Hello.PageRun do\n  def run, do: "${run}"\nend\n`,
    });
    const tuple = `linux-${hostArch()}-gnu2.36-debian12-otp25.2.3-elixir1.14.0`;
    const submitted = await farm.client.submit({ app: 'hello', source: { git: repo.url, commit: repo.commit }, targets: [tuple] });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    const id = submitted.body.builds[0]!.id;

    const page = await browser.newPage({ acceptDownloads: true });
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('console', (m) => {
      // The browser reports each refused or missing resource; the page itself must log nothing else.
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
    });

    // The token, once: the list shows the build.
    await page.goto(`${farm.url}/builds`);
    expect(new URL(page.url()).pathname).toBe('/builds/');
    await page.locator('#token').fill(READ);
    await page.locator('#login-form button[type=submit]').click();
    const row = page.locator(`#builds tbody tr[data-id="${id}"]`);
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('.app').textContent()).toBe('hello');
    expect(await row.locator('.commit').getAttribute('title')).toBe(repo.commit);
    expect(await row.locator('.commit').textContent()).toBe(repo.commit.slice(0, 12));
    expect(await row.locator('.tuple').textContent()).toBe(tuple);
    expect(['waiting', 'active', 'prioritized']).toContain(await row.locator('.state').textContent());
    expect(await page.evaluate(() => sessionStorage.getItem('xamal.farmToken'))).toBe(READ);

    // The filters narrow the list: its app (clicked in the row), this commit (a prefix) and tuple keep it; another commit does not.
    await row.locator('.app button').click();
    expect(await page.locator('#filters input[name=app]').inputValue()).toBe('hello');
    await row.waitFor({ timeout: 15_000 });
    await page.locator('#filters input[name=commit]').fill(repo.commit.slice(0, 10));
    await page.locator('#filters input[name=target]').fill(tuple);
    await page.locator('#filters button[type=submit]').click();
    await page.waitForFunction((want) => [...document.querySelectorAll('#builds tbody tr')].map((r) => r.getAttribute('data-id')).join() === want, id, { timeout: 15_000 });
    await page.locator('#filters input[name=commit]').fill('0000000');
    await page.locator('#filters button[type=submit]').click();
    await page.locator('#list-empty').waitFor({ state: 'visible', timeout: 15_000 });

    // The first log line that appears is recorded with the state the page showed then.
    await page.evaluate(() => {
      const log = document.getElementById('log')!;
      const seen = new MutationObserver(() => {
        const first = log.querySelector('.line');
        if (!first) return;
        (window as unknown as { firstLine: unknown }).firstLine = { at: Date.now(), text: first.textContent, state: document.querySelector('#detail-fields .state')?.textContent ?? '' };
        seen.disconnect();
      });
      seen.observe(log, { childList: true });
    });
    await page.goto(`${farm.url}/builds/#build/${id}`);
    await page.locator('#detail-title').filter({ hasText: id }).waitFor({ timeout: 15_000 });
    expect(await page.locator('#detail-fields .tuple').textContent()).toBe(tuple);
    await page.locator('#log .line').first().waitFor({ timeout: 600_000 });
    const shots = await testArtifactsDir('builds-page');
    await page.screenshot({ path: join(shots, 'build-running.png'), fullPage: true });

    // The artifact row appears once the build completes.
    await page.locator('#artifact tbody tr').waitFor({ timeout: 600_000 });
    const st = await farm.client.status(id);
    expect(st.state, st.failedReason).toBe('completed');
    const first = (await page.evaluate(() => (window as unknown as { firstLine?: unknown }).firstLine)) as FirstLine | undefined;
    expect(first, 'the page showed a log line').toBeDefined();
    expect(first!.at).toBeLessThan(st.finishedAt!);
    expect(first!.state).not.toBe('completed');
    expect(await page.locator('#log .line').count()).toBeGreaterThan(3);
    expect(await page.locator('#log').textContent()).toContain('builds page test: release step waits');
    expect(await page.locator('#detail-fields .state').textContent()).toBe('completed');
    expect(await page.locator('#log-state').textContent()).toBe('(completed)');

    const api = await farm.client.downloadLink('hello', repo.commit, tuple);
    const artifact = page.locator('#artifact tbody tr');
    expect(await artifact.locator('.tuple').textContent()).toBe(tuple);
    expect(await artifact.locator('.sha256').textContent()).toBe(st.result!.sha256);
    expect(st.result!.sha256).toBe(api.sha256);
    expect(await artifact.locator('.size').textContent()).toMatch(/\(\d+ bytes\)$/);

    await page.screenshot({ path: join(shots, 'build-completed.png'), fullPage: true });
    console.log(`builds page screenshots: ${join(shots, 'build-running.png')} and ${join(shots, 'build-completed.png')}`);

    // The download link the page holds is a short-lived signed one: the browser downloads the tarball without a header.
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), artifact.locator('a.download').click()]);
    const file = await download.path();
    const bytes = await readFile(file);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(api.sha256);
    expect(await artifact.locator('.size').textContent()).toContain(`(${bytes.length} bytes)`);

    // Beside it, the signed provenance (issue 23): the page fetches it with the token and saves the bytes the API stores.
    const [prov] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), artifact.locator('a.attestation.provenance').click()]);
    expect(prov.suggestedFilename()).toBe('provenance.dsse.json');
    const stored = await fetch(`${farm.url}/v1/artifacts/hello/${repo.commit}/${tuple}/provenance`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(await readFile(await prov.path(), 'utf8')).toBe(await stored.text());
    expect(problems).toEqual([]);
    await page.close();
  });
});
