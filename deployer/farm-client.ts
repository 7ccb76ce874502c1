import { XamalError } from '../core/index.ts';

/**
 * The farm over HTTP, for CI (`xamal build`) and the deployer. It imports nothing of the API: the
 * wire format is JSON as documented in the README.
 */
export interface FarmClient {
  submit(body: unknown): Promise<{ status: number; body: SubmitBody }>;
  status(id: string): Promise<BuildStatusBody>;
  logs(id: string): Promise<string>;
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
  const call = async (method: string, path: string, body?: unknown): Promise<Response> => {
    let res: Response;
    try {
      res = await fetchImpl(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
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
    async logs(id) {
      const res = await call('GET', `/v1/builds/${id}/logs`);
      return res.status === 404 ? '' : res.text();
    },
  };
}
