// The H5 app: a tiny router over the page modules.

import { add, clear, h, setTitle } from './ui.js';
import { navigate, setRenderer } from './nav.js';
import { revokeQrUrls } from './qr.js';

const routes = [
  [/^\/$/, () => import('./pages/home.js')],
  [/^\/create\/?$/, () => import('./pages/create.js')],
  [/^\/join\/([^/]+)\/?$/, () => import('./pages/join.js')],
  [/^\/login\/?$/, () => import('./pages/login.js')],
  [/^\/me\/?$/, () => import('./pages/me.js')],
  [/^\/ledger\/([^/]+)\/?$/, () => import('./pages/ledger.js')],
  [/^\/dev\/sms\/?$/, () => import('./pages/devsms.js')],
];

let cleanup = null;
let generation = 0;

async function render() {
  generation += 1;
  const mine = generation;
  if (cleanup) {
    try { cleanup(); } catch { /* ignore */ }
    cleanup = null;
  }
  revokeQrUrls();
  document.querySelectorAll('dialog').forEach((d) => d.remove());
  const root = document.getElementById('app');
  clear(root);
  root.dataset.page = '';
  const path = location.pathname;
  for (const [re, load] of routes) {
    const m = re.exec(path);
    if (!m) continue;
    let mod;
    try {
      mod = await load();
    } catch {
      add(root, h('div', { class: 'notice notice-error', role: 'alert' }, '页面加载失败，请检查网络后刷新重试。'));
      return;
    }
    if (mine !== generation) return;
    const params = m.slice(1).map((p) => decodeURIComponent(p));
    const result = await mod.default(root, ...params);
    if (mine !== generation) { if (typeof result === 'function') result(); return; }
    cleanup = typeof result === 'function' ? result : null;
    return;
  }
  setTitle('页面不存在');
  add(root, h('section', { class: 'card' }, h('h1', {}, '页面不存在'), h('p', {}, h('a', { href: '/' }, '返回首页'))));
}

setRenderer(render);

document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a');
  if (!a || a.target || a.hasAttribute('download') || !a.href) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  e.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});

window.addEventListener('popstate', render);
render();
