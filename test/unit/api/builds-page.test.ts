import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../api/app.ts';
import { BUILDS_PAGE_CSP } from '../../../api/routes/builds-page.ts';
import { buildService } from '../../../api/services/builds.ts';
import { healthService } from '../../../api/services/health.ts';
import { storeBackedServices } from '../../../api/services/store-backed.ts';
import { REMOTE_GIT_ONLY } from '../../../core/contracts/git-url.ts';
import { RecordingExecutor } from '../../../core/index.ts';
import { PROJECT_ROOT } from '../../../localservices/config.ts';
import { localStore } from '../../../store/local.ts';
import { memoryQueues } from '../../../testkit/api/memory-queues.ts';

const TOKEN = 'p'.repeat(32);
const PAGE_DIR = join(PROJECT_ROOT, 'api', 'builds-page');

describe('the builds page', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    const store = localStore('/nonexistent-xamal-page');
    const builds = buildService({ queues: memoryQueues().queues, store, locks: async () => [], exec: new RecordingExecutor(), gitUrls: REMOTE_GIT_ONLY });
    app = await buildApp({ token: TOKEN, logLevel: 'silent', services: { health: healthService({}), ...storeBackedServices(store), builds } });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('serves its HTML, script and style without a token (200), each with its type and a strict Content-Security-Policy', async () => {
    for (const [path, type, file] of [
      ['/builds/', 'text/html; charset=utf-8', 'index.html'],
      ['/builds/builds.js', 'text/javascript; charset=utf-8', 'builds.js'],
      ['/builds/builds.css', 'text/css; charset=utf-8', 'builds.css'],
      ['/builds/favicon.svg', 'image/svg+xml', 'favicon.svg'],
    ] as const) {
      const res = await app.inject({ url: path });
      expect(res.statusCode, path).toBe(200);
      expect(res.headers['content-type'], path).toBe(type);
      expect(res.headers['content-security-policy'], path).toBe(BUILDS_PAGE_CSP);
      expect(res.headers['x-content-type-options'], path).toBe('nosniff');
      expect(res.headers['referrer-policy'], path).toBe('no-referrer');
      expect(res.body, path).toBe(readFileSync(join(PAGE_DIR, file), 'utf8'));
    }
    expect(BUILDS_PAGE_CSP).toContain("script-src 'self'");
    expect(BUILDS_PAGE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*|https?:/);
    expect(BUILDS_PAGE_CSP).toContain("frame-ancestors 'none'");
  });

  it('sends /builds to /builds/ (relative, so the page works under a proxy\'s path)', async () => {
    const res = await app.inject({ url: '/builds' });
    expect(res.statusCode).toBe(301);
    expect(res.headers.location).toBe('builds/');
  });

  it('leaves the JSON API behind the token: without one its routes answer 401', async () => {
    for (const url of ['/v1/builds', `/v1/builds/b${'0'.repeat(32)}`, `/v1/builds/b${'0'.repeat(32)}/logs?follow=1`, '/v1/artifacts?app=hello&version=latest']) {
      expect((await app.inject({ url })).statusCode, url).toBe(401);
    }
    expect((await app.inject({ url: '/v1/builds', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
  });

  it('holds no secret, no inline script or style, no asset from elsewhere, and renders data only as text', () => {
    const files = readdirSync(PAGE_DIR);
    expect(files.sort()).toEqual(['builds.css', 'builds.js', 'favicon.svg', 'index.html']);
    const html = readFileSync(join(PAGE_DIR, 'index.html'), 'utf8');
    for (const script of html.match(/<script\b[^>]*>/g) ?? []) expect(script).toMatch(/\bsrc="builds\.js"/);
    expect(html).not.toMatch(/<script\b[^>]*>[^<\s]/);
    expect(html).not.toMatch(/\bstyle=|<style\b|\bon[a-z]+=/i);
    for (const file of files) expect(readFileSync(join(PAGE_DIR, file), 'utf8'), file).not.toMatch(/(?:src|href)="(?:https?:)?\/\/|@import|url\(/);
    const js = readFileSync(join(PAGE_DIR, 'builds.js'), 'utf8');
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    expect(js).toContain('sessionStorage');
    expect(js).not.toContain('localStorage');
  });
});
