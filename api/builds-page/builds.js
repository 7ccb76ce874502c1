// The farm's builds page: plain JavaScript, no framework, served by the API from api/builds-page/.
// It asks for a read token once (kept in this tab's sessionStorage) and calls the JSON API with it
// as a bearer header; the live log is the API's event stream read through fetch. Every value shown
// goes in as text (textContent), never as markup.

const TOKEN_KEY = 'xamal.farmToken';
/** The API's base: the page is served at <base>/builds/. */
const API = new URL('../', location.href);
const LIST_REFRESH_MS = 5000;
const STATUS_REFRESH_MS = 2000;
/** A followed log is read again from where it stopped, at most this many times (a stream cut by the API's byte limit, a dropped connection). */
const LOG_RETRIES = 5;
const FINISHED = new Set(['completed', 'failed']);

const $ = (id) => document.getElementById(id);

/** An element with text (never markup) and attributes. */
function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, String(v));
  return e;
}

class Refused extends Error {}

let token = sessionStorage.getItem(TOKEN_KEY);

/** A call to the API with the token; a 401 or 403 forgets it and asks again. */
async function call(path, init = {}) {
  const res = await fetch(new URL(path, API), { ...init, cache: 'no-store', headers: { ...init.headers, authorization: `Bearer ${token}` } });
  if (res.status === 401 || res.status === 403) {
    const body = await res.json().catch(() => ({}));
    throw new Refused(`The farm refused the token: ${body.message ?? `HTTP ${res.status}`}`);
  }
  return res;
}

async function getJson(path, init) {
  const res = await call(path, init);
  const body = await res.json().catch(() => undefined);
  if (!res.ok) throw new Error(body?.message ?? `HTTP ${res.status} from ${path}`);
  return body;
}

function showLogin(message = '') {
  stopAll();
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  for (const id of ['list', 'detail']) $(id).hidden = true;
  $('forget').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').value = '';
  $('token').focus();
}

/** What a failed call says where the view shows errors (a refused token goes back to the login). */
function failed(err, where) {
  if (err instanceof Refused) return showLogin(err.message);
  if (err.name === 'AbortError') return;
  $(where).textContent = err.message;
}

const time = (ms) => (ms === undefined ? '' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z');

function duration(ms) {
  if (ms === undefined || ms < 0) return '';
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** How long a build took, or has been running, or has waited. */
function took(b) {
  if (b.startedAt !== undefined) return duration((b.finishedAt ?? Date.now()) - b.startedAt) + (b.finishedAt === undefined ? ' so far' : '');
  return FINISHED.has(b.state) ? '' : `waiting ${duration(Date.now() - b.createdAt)}`;
}

function size(bytes) {
  if (bytes === undefined) return 'unknown';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) (n /= 1024), u++;
  return `${u ? n.toFixed(1) : n} ${units[u]} (${bytes} bytes)`;
}

// ——— the one view shown at a time, and what it keeps running ———

let running = new AbortController();

function stopAll() {
  running.abort();
  running = new AbortController();
  return running.signal;
}

/** Calls `fn` every `ms` until `signal` aborts (the view changed). */
function every(ms, signal, fn) {
  const tick = () => {
    if (signal.aborted) return;
    setTimeout(async () => {
      if (signal.aborted) return;
      await fn();
      tick();
    }, ms);
  };
  tick();
}

// ——— the list ———

/** Cursors of the pages shown so far (the first page has none). */
let pages = [undefined];

function listQuery(cursor) {
  const form = new FormData($('filters'));
  const q = new URLSearchParams();
  for (const [k, v] of form) if (String(v).trim()) q.set(k, String(v).trim());
  if (cursor) q.set('cursor', cursor);
  return q;
}

/** A cell whose value, clicked, becomes the list's filter (the builds of that app, commit or target). */
function filterCell(text, cls, field, value, title) {
  const td = el('td', undefined, { class: cls });
  if (!value) return td;
  const b = el('button', text, { type: 'button', class: 'filter', title: title ?? `only ${field} ${value}` });
  b.addEventListener('click', () => {
    $('filters').elements[field].value = value;
    $('filters').requestSubmit();
  });
  td.title = title ?? '';
  td.append(b);
  return td;
}

function buildRow(b) {
  const tr = el('tr', undefined, { 'data-id': b.id, 'data-state': b.state });
  const link = el('a', b.id.slice(0, 13), { href: `#build/${b.id}`, title: b.id });
  const cell = (text, cls, title) => el('td', text, { class: cls, title });
  const commit = b.commit ?? b.version ?? '';
  tr.append(el('td'), filterCell(b.app, 'app', 'app', b.app), filterCell(commit.slice(0, 12), 'commit', 'commit', commit, commit), filterCell(b.tuple, 'tuple', 'target', b.tuple));
  tr.firstChild.append(link);
  tr.append(cell(b.state, `state state-${b.state}`), cell(b.phase ?? '', 'phase'), cell(time(b.createdAt), 'created'), cell(took(b), 'took'));
  if (b.failedReason) tr.title = b.failedReason;
  return tr;
}

async function loadList(signal) {
  const page = pages.length - 1;
  try {
    const list = await getJson(`v1/builds?${listQuery(pages[page])}`, { signal });
    $('list-error').textContent = '';
    $('builds').tBodies[0].replaceChildren(...list.builds.map(buildRow));
    $('list-empty').hidden = list.builds.length > 0;
    $('newer').disabled = page === 0;
    $('older').disabled = !list.nextCursor;
    $('older').dataset.cursor = list.nextCursor ?? '';
    $('page-no').textContent = `page ${page + 1}`;
  } catch (err) {
    failed(err, 'list-error');
  }
}

function showList() {
  const signal = stopAll();
  $('detail').hidden = true;
  $('list').hidden = false;
  void loadList(signal);
  every(LIST_REFRESH_MS, signal, () => loadList(signal));
}

// ——— one build ———

function field(dl, name, value, cls) {
  if (value === undefined || value === '') return;
  dl.append(el('dt', name), el('dd', value, { class: cls }));
}

function renderStatus(st) {
  $('detail-title').textContent = `Build ${st.id}`;
  const dl = $('detail-fields');
  dl.replaceChildren();
  field(dl, 'App', st.app, 'app');
  field(dl, 'Commit', st.commit ?? st.version, 'commit');
  field(dl, 'Target', st.tuple, 'tuple');
  field(dl, 'MIX_ENV / release', st.mixEnv ? `${st.mixEnv} / ${st.release ?? st.app}` : undefined);
  field(dl, 'State', st.state, `state state-${st.state}`);
  field(dl, 'Phase', st.phase, 'phase');
  // BullMQ counts an attempt when it ends: the one running now counts too.
  field(dl, 'Attempts', st.attemptsMade + (st.state === 'active' ? 1 : 0));
  field(dl, 'Created', time(st.createdAt));
  field(dl, 'Started', time(st.startedAt));
  field(dl, 'Finished', time(st.finishedAt));
  field(dl, 'Took', took(st), 'took');
  field(dl, 'Waiting because', st.waitingReason);
  field(dl, 'Failed because', st.failedReason, 'failed-reason');
}

/** A fresh short-lived download link (the API signs it; a browser link cannot carry the token). */
function linkPath(st) {
  const path = `v1/artifacts/${encodeURIComponent(st.app)}/${encodeURIComponent(st.version)}/${encodeURIComponent(st.result.tuple)}`;
  const query = new URLSearchParams({ mixEnv: st.mixEnv, release: st.release });
  return { manifest: `${path}?${query}`, link: `${path}/link?${query}`, provenance: `${path}/provenance?${query}`, sbom: `${path}/sbom?${query}` };
}

/**
 * A link to a document beside the artifact (its signed provenance, its SBOM): the API needs the
 * token, so a click fetches it with the token and opens what came back (a blob of the exact bytes).
 */
function documentLink(text, path, file) {
  const a = el('a', text, { href: new URL(path, API).href, class: `attestation ${file.split('.')[0]}`, download: file });
  a.addEventListener('click', async (ev) => {
    ev.preventDefault();
    try {
      const res = await call(path);
      if (!res.ok) throw new Error((await res.json().catch(() => ({}))).message ?? `HTTP ${res.status} from ${path}`);
      const url = URL.createObjectURL(await res.blob());
      const save = el('a', undefined, { href: url, download: file });
      save.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      failed(err, 'detail-error');
    }
  });
  return a;
}

async function renderArtifact(st, signal) {
  if (!st.result || !st.app || !st.version) return;
  const paths = linkPath(st);
  const [manifest, link] = await Promise.all([getJson(paths.manifest, { signal }).catch(() => undefined), getJson(paths.link, { signal })]);
  const a = el('a', 'Download', { href: link.url, class: 'download', 'data-expires': link.expires });
  // A link lives minutes: one clicked later is made again first.
  a.addEventListener('click', async (ev) => {
    if (Date.parse(a.dataset.expires) - Date.now() > 10_000) return;
    ev.preventDefault();
    try {
      const fresh = await getJson(paths.link);
      a.href = fresh.url;
      a.dataset.expires = fresh.expires;
      location.assign(fresh.url);
    } catch (err) {
      failed(err, 'detail-error');
    }
  });
  const tr = el('tr', undefined, { 'data-tuple': st.result.tuple });
  tr.append(el('td', st.result.tuple, { class: 'tuple' }), el('td', st.result.sha256, { class: 'sha256' }), el('td', size(manifest?.tarball?.size), { class: 'size' }), el('td'), el('td', undefined, { class: 'attestations' }));
  tr.children[3].append(a);
  // Beside the tarball: what the manifest pins (a build from before signing has neither).
  const attested = manifest?.attestations ?? {};
  if (attested.provenance) tr.lastChild.append(documentLink('Provenance', paths.provenance, 'provenance.dsse.json'));
  if (attested.sbom) tr.lastChild.append(' ', documentLink('SBOM', paths.sbom, 'sbom.cdx.json'));
  $('artifact').tBodies[0].replaceChildren(tr);
  $('artifact').hidden = false;
  $('artifact-none').hidden = true;
}

/** Server-sent events from a text stream: `onEvent({event, data})` for each complete event (the WHATWG rules, less `id` and `retry`). */
function sseParser(onEvent) {
  let buf = '';
  let data = [];
  let event = '';
  const line = (l) => {
    if (l === '') {
      if (data.length) onEvent({ event: event || 'message', data: data.join('\n') });
      data = [];
      event = '';
      return;
    }
    if (l.startsWith(':')) return;
    const i = l.indexOf(':');
    const name = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? '' : l.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'data') data.push(value);
    else if (name === 'event') event = value;
  };
  return (chunk) => {
    buf += chunk;
    const parts = buf.split(/\r\n|\r|\n/);
    buf = parts.pop();
    for (const l of parts) line(l);
  };
}

function appendLog(text) {
  const log = $('log');
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.append(el('span', `${text}\n`, { class: 'line' }));
  if (atEnd) log.scrollTop = log.scrollHeight;
}

/**
 * One read of the log's event stream from line `start`: lines go to the page; resolves with the end
 * event if it came, and where the next read starts. A stream cut at the API's byte limit (its marker
 * line names where the rest starts) is left at once, so the rest is read by a new stream.
 */
async function readLogStream(id, start, signal) {
  const res = await call(`v1/builds/${id}/logs?follow=1&start=${start}`, { signal, headers: { accept: 'text/event-stream' } });
  if (!res.ok) throw new Error((await res.json().catch(() => ({}))).message ?? `HTTP ${res.status} from the log stream`);
  let next = start;
  let end;
  let cut = false;
  const feed = sseParser((e) => {
    if (cut) return;
    if (e.event === 'end') end = JSON.parse(e.data);
    else if (e.event === 'error') $('log-state').textContent = `(${JSON.parse(e.data).message})`;
    else if (/^\[xamal\] log response cut at \d+ bytes; the rest: \?start=\d+$/.test(e.data)) {
      cut = true;
      next = Number(/start=(\d+)$/.exec(e.data)[1]);
    } else {
      // One event is one log line (a line that held newlines arrives as several data fields).
      appendLog(e.data);
      next++;
    }
  });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  while (!cut && !end) {
    const { value, done } = await reader.read();
    if (done) break;
    feed(value);
  }
  if (cut || end) await reader.cancel().catch(() => {});
  return { end, next, cut };
}

/** Follows the build's log until the build ends; resolves with the end event (undefined when the stream kept breaking). */
async function followLog(id, signal) {
  let next = 0;
  let failures = 0;
  while (!signal.aborted && failures <= LOG_RETRIES) {
    const r = await readLogStream(id, next, signal);
    if (r.end) return r.end;
    // A cut stream goes on at once from where it stopped; a dropped one after a pause.
    if (!(r.cut && r.next > next)) {
      failures++;
      await new Promise((ok) => setTimeout(ok, 1000));
    }
    next = r.next;
  }
  return undefined;
}

async function showBuild(id) {
  const signal = stopAll();
  $('list').hidden = true;
  $('detail').hidden = false;
  $('detail-error').textContent = '';
  $('detail-fields').replaceChildren();
  $('artifact').hidden = true;
  $('artifact-none').hidden = false;
  $('log').replaceChildren();
  $('log-state').textContent = '(following)';
  let st;
  const refresh = async () => {
    try {
      st = await getJson(`v1/builds/${id}`, { signal });
      renderStatus(st);
    } catch (err) {
      failed(err, 'detail-error');
    }
  };
  await refresh();
  if (!st || signal.aborted) return;
  const ticking = new AbortController();
  signal.addEventListener('abort', () => ticking.abort());
  if (!FINISHED.has(st.state)) every(STATUS_REFRESH_MS, ticking.signal, refresh);
  try {
    const end = await followLog(id, signal);
    ticking.abort();
    $('log-state').textContent = end ? `(${end.state})` : '(stream ended)';
    await refresh();
  } catch (err) {
    return failed(err, 'detail-error');
  }
  if (st?.state !== 'completed') return;
  try {
    await renderArtifact(st, signal);
  } catch (err) {
    failed(err, 'artifact-none');
  }
}

// ——— wiring ———

function route() {
  if (!token) return showLogin();
  $('login').hidden = true;
  $('forget').hidden = false;
  const m = /^#build\/(b[0-9a-f]{32})$/.exec(location.hash);
  if (m) void showBuild(m[1]);
  else showList();
}

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  $('login-error').textContent = '';
  route();
});
$('forget').addEventListener('click', () => showLogin());
$('filters').addEventListener('submit', (ev) => {
  ev.preventDefault();
  pages = [undefined];
  showList();
});
$('older').addEventListener('click', () => {
  pages.push($('older').dataset.cursor);
  showList();
});
$('newer').addEventListener('click', () => {
  if (pages.length > 1) pages.pop();
  showList();
});
window.addEventListener('hashchange', route);
route();
