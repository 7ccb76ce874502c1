import { XamalError } from '../core/index.ts';

/**
 * The farm over HTTP, for CI (`xamal build`) and the deployer. It imports nothing of the API: the
 * wire format is JSON as documented in the README.
 */
export interface FarmClient {
  submit(body: unknown): Promise<{ status: number; body: SubmitBody }>;
  status(id: string): Promise<BuildStatusBody>;
  logs(id: string): Promise<string>;
  /** The best artifact for a host (its fingerprint), and why every other candidate was not chosen. */
  resolve(body: { app: string; version: string; host: unknown; selector?: unknown }): Promise<ResolveBody>;
  /** A short-lived URL the host itself downloads the tarball from (the deployer stays out of the data path). */
  downloadLink(app: string, version: string, tuple: string): Promise<{ url: string; sha256: string; expires: string }>;
}

export interface ResolveBody {
  artifact: { tuple: string; manifestKey: string; sha256: string; glibcNeeded?: string };
  others: { tuple: string; runs: boolean; reasons: { code: string; message: string }[] }[];
}

export interface SubmitBody {
  buildSet: string;
  builds: { id: string; tuple: string; status: string; manifestKey?: string }[];
  unresolved: { target: unknown; reasons: string[] }[];
}

export interface BuildStatusBody {
  id: string;
  state: string;
  phase?: string;
  failedReason?: string;
  waitingReason?: string;
  result?: { manifestKey: string; tuple: string; sha256: string; cached: boolean };
}

export function farmClient(baseUrl: string, token: string, fetchImpl: typeof fetch = fetch): FarmClient {
  const base = baseUrl.replace(/\/+$/, '');
  const call = async (method: string, path: string, body?: unknown, redirect: RequestRedirect = 'follow'): Promise<Response> => {
    let res: Response;
    try {
      res = await fetchImpl(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
        redirect,
      });
    } catch (err) {
      throw new XamalError('unavailable', `farm ${base} did not answer: ${(err as Error).message}`, { cause: err });
    }
    if (res.status >= 400 && res.status !== 404) {
      const text = await res.text();
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        /* not JSON */
      }
      const code = res.status === 401 ? 'unauthorized' : res.status === 403 ? 'forbidden' : res.status < 500 ? 'validation' : 'external';
      throw new XamalError(code, `farm: ${method} ${path}: ${res.status}: ${message}`);
    }
    return res;
  };
  return {
    async submit(body) {
      const res = await call('POST', '/v1/builds', body);
      return { status: res.status, body: (await res.json()) as SubmitBody };
    },
    async status(id) {
      const res = await call('GET', `/v1/builds/${id}`);
      if (res.status === 404) throw new XamalError('not_found', `farm: no build ${id}`);
      return (await res.json()) as BuildStatusBody;
    },
    async resolve(body) {
      const res = await call('POST', '/v1/resolve', body);
      if (res.status === 404) {
        const b = (await res.json()) as { message?: string };
        throw new XamalError('not_found', `farm: ${b.message ?? 'no artifact fits this host'}`);
      }
      return (await res.json()) as ResolveBody;
    },
    async downloadLink(app, version, tuple) {
      const res = await call('GET', `/v1/artifacts/${encodeURIComponent(app)}/${encodeURIComponent(version)}/${encodeURIComponent(tuple)}/download`, undefined, 'manual');
      const url = res.headers.get('location');
      const sha256 = res.headers.get('x-xamal-sha256');
      if (res.status !== 302 || !url || !sha256) throw new XamalError(res.status === 404 ? 'not_found' : 'external', `farm: no download link for ${app} ${version} ${tuple} (HTTP ${res.status})`);
      return { url: new URL(url, base).toString(), sha256, expires: res.headers.get('x-xamal-expires') ?? '' };
    },
    async logs(id) {
      const res = await call('GET', `/v1/builds/${id}/logs`);
      return res.status === 404 ? '' : res.text();
    },
  };
}
