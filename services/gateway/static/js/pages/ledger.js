// 团体簿管理 (admins): header, then tabs: 成员 / 预警 / 二维码 / 设置. A closed
// ledger has no tabs: what it says about the closing, and the access log.

import { api } from '../api.js';
import { errorText } from '../errors.js';
import { alertsPanel, unreadCount } from '../ledger/alerts.js';
import { membersPanel } from '../ledger/members.js';
import { accessLogCard, settingsPanel } from '../ledger/settings.js';
import { handleAuthError, requireLogin } from '../nav.js';
import { qrPanel } from '../qr.js';
import { add, fill, fmtTime, h, notice, ROLE, setTitle } from '../ui.js';

const TABS = [
  ['members', '成员'],
  ['alerts', '预警'],
  ['qr', '二维码'],
  ['settings', '设置'],
];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export default async function ledgerPage(root, ledgerId) {
  setTitle('团体簿管理');
  root.dataset.page = 'ledger';
  root.classList.add('wide');
  if (!requireLogin()) return () => root.classList.remove('wide');
  const loading = h('p', { class: 'loading' }, '加载中…');
  add(root, loading);

  let ledger;
  try {
    ledger = await api.get(`/api/ledgers/${encodeURIComponent(ledgerId)}`);
  } catch (err) {
    loading.remove();
    if (handleAuthError(err)) return () => root.classList.remove('wide');
    const text = err.code === 'forbidden' ? '您不是该团体簿的管理员，无法查看。'
      : err.code === 'not_found' ? '团体簿不存在或已删除。' : errorText(err);
    add(root, h('section', { class: 'card' }, h('h1', {}, '团体簿管理'), notice(text, 'error'), h('a', { href: '/me' }, '返回我的')));
    return () => root.classList.remove('wide');
  }
  loading.remove();

  const panels = {};
  let current = null;
  const badge = h('span', { class: 'badge', hidden: true, 'aria-label': '未读预警' });
  const tabButtons = {};
  const body = h('div', { class: 'tab-body' });
  const header = h('header', { class: 'ledger-head' });
  const tabBar = h('div', { class: 'tabs', role: 'tablist', 'aria-label': '团体簿管理' });
  add(root, header, tabBar, body);

  const ctx = {
    id: ledger.ledger_id,
    ledger,
    setUnread(n) {
      badge.textContent = n > 99 ? '99+' : String(n);
      badge.hidden = !n;
    },
    refreshMembers() { panels.members?.reload?.(); },
    /** Read the ledger again (until ``until(ledger)`` holds, for a few seconds) and redraw. */
    async reloadLedger({ until } = {}) {
      for (let i = 0; i < 20; i += 1) {
        try {
          const l = await api.get(`/api/ledgers/${encodeURIComponent(ledgerId)}`);
          if (!until || until(l) || i === 19) { ledger = l; ctx.ledger = l; break; }
        } catch (err) {
          if (handleAuthError(err)) return;
          break;
        }
        await sleep(500);
      }
      renderHeader();
      for (const p of Object.values(panels)) p.dispose?.();
      for (const k of Object.keys(panels)) delete panels[k];
      if (ledger.status === 'active') show(current, false);
      else renderClosed();
    },
  };

  function renderHeader() {
    setTitle(`${ledger.org_name} - 管理`);
    const closed = ledger.status !== 'active';
    fill(header, 
      h('div', { class: 'ledger-title-row' },
        h('h1', { class: 'ledger-name' }, ledger.org_name),
        h('span', { class: `tag ${closed ? 'tag-muted' : 'tag-ok'} ledger-status` }, closed ? '已关闭' : '使用中'),
        ledger.my_role ? h('span', { class: 'tag' }, `我是${ROLE[ledger.my_role] || ledger.my_role}`) : null),
      ledger.org_address ? h('p', { class: 'muted small' }, ledger.org_address) : null);
  }

  // Closing destroyed the ledger's data keys: no member, statistic, comparison, export,
  // reminder, alert, rule or admin can be shown or changed any more, so none is offered.
  function renderClosed() {
    tabBar.hidden = true;
    ctx.setUnread(0);
    const log = accessLogCard(ctx, ledger.my_role === 'owner');
    fill(body, h('section', { class: 'card closed-ledger', 'aria-labelledby': 'closed-title' },
      h('h2', { id: 'closed-title' }, '团体簿已关闭'),
      h('p', {}, `本团体簿已于 ${fmtTime(ledger.closed_at)} 关闭。`),
      h('p', {}, '关闭时已按承诺销毁本团体簿的数据：成员的姓名、证件号码、手机号和健康信息都已无法读取，也无法恢复。'),
      h('p', { class: 'muted' }, '二维码已失效，不能再加入；统计、与健康宝比对、导出、提醒和预警都已停止。成员在“我的”里看到团体簿已关闭。下方的查看记录保留关闭前管理员查看和导出成员数据的情况。')),
    log.el);
    history.replaceState({}, '', `${location.pathname}${location.search}`);
  }

  function show(name, focus = true) {
    if (!TABS.some(([k]) => k === name)) name = 'members';
    current = name;
    for (const [k, b] of Object.entries(tabButtons)) {
      b.setAttribute('aria-selected', k === name ? 'true' : 'false');
      b.tabIndex = k === name ? 0 : -1;
    }
    if (!panels[name]) {
      if (name === 'members') panels[name] = membersPanel(ctx);
      else if (name === 'alerts') panels[name] = alertsPanel(ctx);
      else if (name === 'settings') panels[name] = settingsPanel(ctx);
      else if (name === 'qr') {
        panels[name] = {
          el: ledger.status === 'active' ? qrPanel(ledger, { rotate: true }) : h('section', { class: 'card' }, notice('团体簿已关闭，二维码已失效。', 'muted')),
        };
      }
      panels[name].el.id = `panel-${name}`;
      panels[name].el.setAttribute('role', 'tabpanel');
      panels[name].el.setAttribute('aria-labelledby', `tab-${name}`);
    } else if (name === 'alerts') panels[name].reload?.();
    fill(body, panels[name].el);
    history.replaceState({}, '', `${location.pathname}${location.search}#${name}`);
    if (focus) tabButtons[name].focus();
  }

  for (const [k, label] of TABS) {
    const b = h('button', {
      type: 'button', role: 'tab', id: `tab-${k}`, class: 'tab', 'aria-controls': `panel-${k}`, dataset: { tab: k },
      onclick: () => show(k),
    }, label, k === 'alerts' ? badge : null);
    b.addEventListener('keydown', (e) => {
      const i = TABS.findIndex(([t]) => t === k);
      if (e.key === 'ArrowRight') show(TABS[(i + 1) % TABS.length][0]);
      if (e.key === 'ArrowLeft') show(TABS[(i + TABS.length - 1) % TABS.length][0]);
    });
    tabButtons[k] = b;
    add(tabBar, b);
  }

  renderHeader();
  if (ledger.status === 'active') {
    show((location.hash || '#members').slice(1), false);
    unreadCount(ledger.ledger_id).then((n) => ctx.setUnread(n));
  } else renderClosed();

  return () => {
    root.classList.remove('wide');
    for (const p of Object.values(panels)) p.dispose?.();
  };
}
