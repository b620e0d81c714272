// The alerts tab: members who became abnormal, got a new problem while abnormal, or
// are back to normal; read marks, the daily SMS digest opt-in.

import { api, isMissing } from '../api.js';
import { errorText } from '../errors.js';
import { handleAuthError } from '../nav.js';
import { add, busy, button, clear, field, fill, fmtTime, h, notice, unavailableNotice } from '../ui.js';

const KIND = { became_abnormal: '转为异常', worsened: '新增异常', back_to_normal: '恢复正常' };
const ABNORMAL = new Set(['became_abnormal', 'worsened']);

export function alertsPanel(ctx) {
  const id = encodeURIComponent(ctx.id);
  const list = h('div', { class: 'alert-list', 'aria-live': 'polite' });
  const msg = h('div', { class: 'action-msg', role: 'status', 'aria-live': 'polite' });
  const readAll = button('全部标为已读', { class: 'btn btn-small read-all' });
  const digest = field({ name: 'digest', label: '每日短信摘要：有新预警时每天最多发一条短信给我', kind: 'checkbox' });
  let alive = true;

  async function load() {
    try {
      const r = await api.get(`/api/ledgers/${id}/alerts`);
      if (!alive) return;
      ctx.setUnread(r.unread || 0);
      if (typeof r.digest === 'boolean') digest.value = r.digest;
      else if (typeof r.digest_enabled === 'boolean') digest.value = r.digest_enabled;
      clear(list);
      readAll.hidden = !r.unread;
      const items = r.items || [];
      if (!items.length) add(list, h('p', { class: 'muted empty' }, '暂无预警。成员的健康状态按规则变为异常、新增异常或恢复正常时，会在这里提示。'));
      for (const a of items) add(list, alertItem(a));
    } catch (err) {
      if (handleAuthError(err)) return;
      fill(list, isMissing(err) ? unavailableNotice('预警') : notice(errorText(err), 'error'));
      readAll.hidden = true;
      digest.wrap.hidden = isMissing(err);
    }
  }

  function alertItem(a) {
    const markBtn = a.read ? null : button('标为已读', { class: 'btn btn-small btn-link mark-read' });
    const li = h('article', { class: `alert-item ${a.read ? '' : 'is-unread'} kind-${a.kind}`, dataset: { alertId: a.alert_id } },
      h('div', { class: 'alert-head' },
        a.read ? null : h('span', { class: 'dot', 'aria-label': '未读' }),
        h('strong', { class: 'alert-name' }, a.name || '成员'),
        h('span', { class: `tag ${ABNORMAL.has(a.kind) ? 'tag-abnormal' : 'tag-ok'}` }, KIND[a.kind] || a.kind),
        h('time', { datetime: a.at, class: 'muted small' }, fmtTime(a.at))),
      reasonList(a),
      markBtn);
    markBtn?.addEventListener('click', () => busy(markBtn, '…', async () => {
      try {
        await api.post(`/api/ledgers/${id}/alerts/read`, { alert_ids: [a.alert_id] });
        await load();
      } catch (err) { msg.textContent = errorText(err); }
    }));
    return li;
  }

  // a back-to-normal alert carries the reasons that went: shown muted, as resolved, so
  // nobody reads them as current problems (a worsened one carries only the new reasons)
  function reasonList(a) {
    if (!a.reasons?.length) return null;
    const items = h('ul', { class: 'reasons' }, a.reasons.map((r) => h('li', {}, r.label || r.code)));
    if (a.kind !== 'back_to_normal') return items;
    return h('div', { class: 'reasons-line is-resolved' }, h('span', {}, '已解除：'), items);
  }

  readAll.addEventListener('click', () => busy(readAll, '处理中…', async () => {
    try {
      await api.post(`/api/ledgers/${id}/alerts/read`, {});
      await load();
      msg.textContent = '已全部标为已读';
    } catch (err) { msg.textContent = errorText(err); }
  }));

  digest.input.addEventListener('change', async () => {
    const want = digest.value;
    digest.input.disabled = true;
    try {
      const r = await api.put(`/api/ledgers/${id}/alerts/digest`, { enabled: want });
      const on = typeof r?.digest === 'boolean' ? r.digest : typeof r?.enabled === 'boolean' ? r.enabled : want;
      digest.value = on;
      msg.textContent = on ? '已开启每日短信摘要' : '已关闭每日短信摘要';
    } catch (err) {
      digest.value = !want;
      msg.textContent = isMissing(err) ? '短信摘要功能暂未开放。' : errorText(err);
    } finally {
      digest.input.disabled = false;
    }
  });

  const el = h('section', { class: 'card alerts-panel', 'aria-labelledby': 'alerts-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'alerts-title' }, '预警'), readAll),
    digest.wrap, msg, list);
  load();
  return { el, reload: load, dispose: () => { alive = false; } };
}

/** Just the unread count, for the tab badge (0 when alerts are not available). */
export async function unreadCount(ledgerId) {
  try {
    const r = await api.get(`/api/ledgers/${encodeURIComponent(ledgerId)}/alerts`);
    return r.unread || 0;
  } catch {
    return 0;
  }
}
