// The gateway's JSON API: one fetch wrapper, the session token, and ApiError.

const TOKEN_KEY = 'tuantibu.token';

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY); } catch { return null; }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: the session lasts for this page only */ }
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || (status === 0 ? 'network' : 'internal');
    this.field = error?.field || null;
    this.details = error?.details || {};
  }
}

function headers(auth, extra) {
  const h = { Accept: 'application/json', ...(extra || {}) };
  const token = auth ? getToken() : null;
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    q.set(k, v === true ? 'true' : String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function send(method, path, { body, auth = true } = {}) {
  const init = { method, headers: headers(auth), cache: 'no-store' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, { code: 'network', message: 'network error' });
  }
}

async function errorOf(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  return new ApiError(response.status, body?.error || null);
}

/** JSON request; resolves to {status, data}; rejects with ApiError. */
export async function request(method, path, options = {}) {
  const response = await send(method, path, options);
  if (!response.ok) throw await errorOf(response);
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch { data = null; }
  }
  return { status: response.status, data };
}

export const api = {
  get: (path, o) => request('GET', path, o).then((r) => r.data),
  post: (path, body, o) => request('POST', path, { ...o, body: body ?? {} }).then((r) => r.data),
  put: (path, body, o) => request('PUT', path, { ...o, body: body ?? {} }).then((r) => r.data),
  del: (path, body, o) => request('DELETE', path, { ...o, body }).then((r) => r.data),
};

/** A binary response (QR image, export) as {blob, filename}. */
export async function fetchBlob(path) {
  const response = await send('GET', path, { auth: true });
  if (!response.ok) throw await errorOf(response);
  const blob = await response.blob();
  let filename = null;
  const cd = response.headers.get('Content-Disposition') || '';
  const star = /filename\*=(?:UTF-8'')?([^;]+)/i.exec(cd);
  const plain = /filename="?([^";]+)"?/i.exec(cd);
  try {
    if (star) filename = decodeURIComponent(star[1].trim().replace(/^"|"$/g, ''));
    else if (plain) filename = plain[1].trim();
  } catch { filename = null; }
  return { blob, filename };
}

/** Whether the dev SMS outbox answers (dev/demo mode); asked once per page load. */
let devSms = null;
export function devSmsAvailable() {
  if (!devSms) {
    devSms = send('GET', '/api/dev/sms', { auth: false })
      .then((r) => r.text().then(() => r.ok)) // read the body: an unread one keeps the request open
      .catch(() => false);
  }
  return devSms;
}

/** An endpoint this gateway does not have (yet): 404 from the catch-all, or 405. */
export function isMissing(err) {
  return !!err && (err.status === 405 || (err.status === 404 && (err.code === 'not_found' || !err.code)));
}
