import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createParser } from 'eventsource-parser';
import type { z } from 'zod';
import { formatIssues, issuesFromZod, XamalError } from '../core/index.ts';
import { ArtifactAttestationsSchema, DOWNLOAD_LINK_HEADERS, DownloadLinkSchema, type ArtifactAttestations, type DownloadLink } from '../api/schemas/artifacts.ts';
import { FarmPublicKeysSchema, type FarmPublicKey } from '../core/contracts/attestation.ts';
import { BuildListSchema, BuildStatusSchema, CancelResultSchema, LogStreamEndSchema, SubmitResultSchema, type BuildList, type BuildRequestInput, type BuildStatus, type CancelResult, type LogStreamEnd, type SubmitResult } from '../api/schemas/builds.ts';
import { ErrorBodySchema } from '../api/schemas/errors.ts';
import { ResolveAnswerSchema, type ResolveAnswer, type ResolveRequestInput } from '../api/schemas/resolve.ts';
import { SourceUploadSchema, type SourceUpload } from '../api/schemas/sources.ts';

/**
 * The farm over HTTP, for CI (`xamal build`) and the deployer. Requests and answers are typed by the
 * API's own schemas (api/schemas), and answers are parsed with them: a farm that answers otherwise
 * (another version, a proxy's page) is an error naming each field that does not fit.
 */
export interface FarmClient {
  submit(body: BuildRequestInput): Promise<{ status: number; body: SubmitResult }>;
  status(id: string): Promise<BuildStatus>;
  logs(id: string): Promise<string>;
  /** The best artifact for a host (its fingerprint), and why every other candidate was not chosen. */
  resolve(body: ResolveRequestInput): Promise<ResolveAnswer>;
  /** A short-lived URL the host itself downloads the tarball from (the deployer stays out of the data path). */
  downloadLink(app: string, version: string, tuple: string, variant?: ArtifactVariant): Promise<DownloadLink>;
  /** An artifact's manifest, signature, provenance and SBOM as their exact stored text (GET …/attestations). */
  attestations(app: string, version: string, tuple: string, variant?: ArtifactVariant): Promise<ArtifactAttestations>;
  /** The keys the farm signs with (GET /v1/keys): the current one and those rotated out. */
  keys(): Promise<FarmPublicKey[]>;
  /** The newest builds (of an app, a commit prefix, a target tuple, in a state when given), a page at a time: pass `nextCursor` as `cursor`. */
  list(query: BuildListFilter): Promise<BuildList>;
  /** Cancels a build (removed from its queue, or its worker signalled). */
  cancel(id: string): Promise<CancelResult>;
  /** Follows a build's log (the API's event stream) line by line until the build ends; resolves with how it ended. */
  followLogs(id: string, onLine: (line: string) => void): Promise<{ state: string; failedReason?: string | undefined }>;
  /** Uploads a source archive (a `.tar.gz` of the project) from a file, saying how many bytes went so far. */
  uploadSource(file: string, progress?: (sent: number, total: number) => void): Promise<SourceUpload>;
}

/** Which build of a commit and tuple (`?mixEnv=&release=`; the farm's defaults when absent). */
export interface ArtifactVariant {
  mixEnv?: string | undefined;
  release?: string | undefined;
}

/** An artifact route's path: `/v1/artifacts/APP/VERSION/TUPLE/<what>?mixEnv=&release=`. */
function artifactPath(app: string, version: string, tuple: string, what: string, variant: ArtifactVariant = {}): string {
  const query = new URLSearchParams(Object.entries(variant).filter((e): e is [string, string] => typeof e[1] === 'string')).toString();
  return `/v1/artifacts/${encodeURIComponent(app)}/${encodeURIComponent(version)}/${encodeURIComponent(tuple)}/${what}${query ? `?${query}` : ''}`;
}

/** `GET /v1/builds`'s query as the client sends it (api/schemas/builds.ts BuildListQuerySchema checks it). */
export interface BuildListFilter {
  app?: string | undefined;
  commit?: string | undefined;
  target?: string | undefined;
  state?: string | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
}

/** A request's body: JSON, or a stream of bytes of a known length (an upload). */
type Payload = { json: unknown } | { stream: ReadableStream<Uint8Array>; type: string; length: number };

/** A followed log stream lasts at most this long (a build's own limit is shorter). */
const FOLLOW_TIMEOUT_MS = 4 * 3_600_000;

/** Reads a build's log event stream (api/routes/builds.ts): each line to `onLine`, then how the build ended. */
async function readLogStream(res: Response, id: string, onLine: (line: string) => void): Promise<LogStreamEnd> {
  let end: LogStreamEnd | undefined;
  let broken: string | undefined;
  const parser = createParser({
    onEvent: (e) => {
      if (e.event === 'end') end = fitting(LogStreamEndSchema, JSON.parse(e.data), `GET /v1/builds/${id}/logs (end event)`);
      else if (e.event === 'error') broken = e.data;
      else for (const line of e.data.split('\n')) onLine(line);
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of res.body ?? []) parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
  if (!end) throw new XamalError('unavailable', `farm: the log stream of ${id} ended before the build did${broken ? ` (${broken})` : ''}; follow it again`);
  return end;
}

/** An upload may take this long (a large project over a slow link); other requests 30 s. */
const UPLOAD_TIMEOUT_MS = 15 * 60_000;

/** `value` as `schema` reads it, or an error listing every field of the farm's answer that does not fit. */
function fitting<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new XamalError('external', `farm: ${what}: the answer does not fit the farm API's schema:\n${formatIssues(issuesFromZod(r.error))}`);
  return r.data;
}

/** The message of an error answer: the API error body's `message`, else the text as it came. */
function errorMessage(text: string): string {
  try {
    const body = ErrorBodySchema.pick({ message: true }).safeParse(JSON.parse(text));
    return body.success ? body.data.message : text;
  } catch {
    return text;
  }
}

export function farmClient(baseUrl: string, token: string, fetchImpl: typeof fetch = fetch): FarmClient {
  const base = baseUrl.replace(/\/+$/, '');
  const call = async (method: string, path: string, payload?: Payload, redirect: RequestRedirect = 'follow', timeoutMs?: number): Promise<Response> => {
    let res: Response;
    const body = !payload ? {} : 'json' in payload ? { body: JSON.stringify(payload.json) } : { body: payload.stream, duplex: 'half' };
    const type = !payload ? {} : 'json' in payload ? { 'content-type': 'application/json' } : { 'content-type': payload.type, 'content-length': String(payload.length) };
    try {
      res = await fetchImpl(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...type },
        ...body,
        signal: AbortSignal.timeout(timeoutMs ?? (payload && 'stream' in payload ? UPLOAD_TIMEOUT_MS : 30_000)),
        redirect,
      } as RequestInit);
    } catch (err) {
      throw new XamalError('unavailable', `farm ${base} did not answer: ${(err as Error).message}`, { cause: err });
    }
    if (res.status >= 400 && res.status !== 404) {
      const code = res.status === 401 ? 'unauthorized' : res.status === 403 ? 'forbidden' : res.status < 500 ? 'validation' : 'external';
      throw new XamalError(code, `farm: ${method} ${path}: ${res.status}: ${errorMessage(await res.text())}`);
    }
    return res;
  };
  /** A JSON answer read with its schema; a 404 is not_found with the farm's message. */
  const json = async <S extends z.ZodType>(method: string, path: string, schema: S, payload?: Payload): Promise<{ status: number; body: z.output<S> }> => {
    const res = await call(method, path, payload);
    const text = await res.text();
    if (res.status === 404) throw new XamalError('not_found', `farm: ${errorMessage(text) || `nothing at ${method} ${path}`}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new XamalError('external', `farm: ${method} ${path}: expected a JSON answer, got ${JSON.stringify(text.slice(0, 200))}`);
    }
    return { status: res.status, body: fitting(schema, parsed, `${method} ${path}`) };
  };
  return {
    submit: (body) => json('POST', '/v1/builds', SubmitResultSchema, { json: body }),
    status: async (id) => (await json('GET', `/v1/builds/${id}`, BuildStatusSchema)).body,
    resolve: async (body) => (await json('POST', '/v1/resolve', ResolveAnswerSchema, { json: body })).body,
    attestations: async (app, version, tuple, variant) => (await json('GET', artifactPath(app, version, tuple, 'attestations', variant), ArtifactAttestationsSchema)).body,
    keys: async () => (await json('GET', '/v1/keys', FarmPublicKeysSchema)).body.keys,
    async downloadLink(app, version, tuple, variant = {}) {
      const path = artifactPath(app, version, tuple, 'download', variant);
      const res = await call('GET', path, undefined, 'manual');
      if (res.status !== 302) throw new XamalError(res.status === 404 ? 'not_found' : 'external', `farm: no download link for ${app} ${version} ${tuple} (HTTP ${res.status})`);
      const header = (field: keyof DownloadLink) => res.headers.get(DOWNLOAD_LINK_HEADERS[field]) ?? undefined;
      const link = fitting(DownloadLinkSchema, { url: header('url'), sha256: header('sha256'), expires: header('expires') ?? '' }, `GET ${path} (headers ${Object.values(DOWNLOAD_LINK_HEADERS).join(', ')})`);
      return { ...link, url: new URL(link.url, base).toString() };
    },
    async uploadSource(file, progress) {
      const total = (await stat(file)).size;
      let sent = 0;
      const counted = createReadStream(file).on('data', (chunk) => {
        sent += chunk.length;
        progress?.(sent, total);
      });
      const stream = Readable.toWeb(counted) as ReadableStream<Uint8Array>;
      return (await json('POST', '/v1/sources', SourceUploadSchema, { stream, type: 'application/gzip', length: total })).body;
    },
    list: async (query) => {
      const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)])).toString();
      return (await json('GET', `/v1/builds${q ? `?${q}` : ''}`, BuildListSchema)).body;
    },
    cancel: async (id) => (await json('DELETE', `/v1/builds/${id}`, CancelResultSchema)).body,
    async followLogs(id, onLine) {
      const res = await call('GET', `/v1/builds/${id}/logs?follow=1`, undefined, 'follow', FOLLOW_TIMEOUT_MS);
      if (res.status === 404) throw new XamalError('not_found', `farm: ${errorMessage(await res.text()) || `no build ${id}`}`);
      return readLogStream(res, id, onLine);
    },
    async logs(id) {
      const res = await call('GET', `/v1/builds/${id}/logs`);
      return res.status === 404 ? '' : res.text();
    },
  };
}
