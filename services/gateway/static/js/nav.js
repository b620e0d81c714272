// Client-side navigation: the gateway serves index.html for every page path.

import { getToken, setToken } from './api.js';

let renderer = null;
export function setRenderer(fn) { renderer = fn; }

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState({}, '', path);
  else history.pushState({}, '', path);
  window.scrollTo(0, 0);
  return renderer ? renderer() : undefined;
}

export function loginPath() {
  return `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
}

/** True when there is a session token; otherwise go to the login page. */
export function requireLogin() {
  if (getToken()) return true;
  navigate(loginPath(), { replace: true });
  return false;
}

/** A 401 means the session is gone: forget it and log in again. Returns true if handled. */
export function handleAuthError(err) {
  if (err && (err.status === 401 || err.code === 'unauthenticated')) {
    setToken(null);
    navigate(loginPath(), { replace: true });
    return true;
  }
  return false;
}

/** Where to go after logging in: a same-site path only. */
export function safeNext(next, fallback = '/me') {
  if (typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login')) return next;
  return fallback;
}
