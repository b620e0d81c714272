// The members tab: stats, comparison runs, filters, the list, export and reminders.

import { api, fetchBlob, isMissing, query } from '../api.js';
import { errorText, reasonText } from '../errors.js';
import { handleAuthError } from '../nav.js';
import { add, busy, button, clear, CODE_STATUS, codeBadge, confirmDialog, dialog, field, fill, fmtDate, fmtTime, h, notice, TEST_AGE, TEST_RESULT, testDays, unavailableNotice, VACCINATION } from '../ui.js';
import {
  describeFilters, dropHealthFilters, emptyFilters, filterParams, filtersFromSearch, HEALTH_KEYS, matches, ORDER,
  SORT, STATUS,
} from './filters.js';

const PAGE_SIZE = 20;
const HEALTH_ONLY_ACTIVE = '已退出/移除的成员没有健康数据：健康码、核酸、疫苗筛选和按核酸天数排序只适用于在册成员。';
const CLEARED = '已清除健康筛选（只适用于在册成员，已退出/移除的成员没有健康数据）。';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function leftWhy(m) {
  if (m.status === 'removed') return m.left_reason ? `管理员移除：${m.left_reason}` : '管理员移除';
  if (m.left_reason === 'ledger_closed' || m.status === 'closed') return '团体簿关闭';
  return '本人退出';
}

/** Near or at the ledger's member cap (from 90%), a warning: who can raise it. */
export function capNotice(total, cap) {
  if (!cap || total < cap * 0.9) return null;
  const counts = `${total.toLocaleString('zh-CN')} / ${cap.toLocaleString('zh-CN')} 人`;
  return h('div', { class: 'notice notice-warn cap-notice', role: 'status' },
    total >= cap ? `成员已满（${counts}）：新成员暂时无法加入。` : `成员接近上限（${counts}）：达到上限后新成员将无法加入。`,
    '如需更多名额，请联系系统管理员调整本团体簿的成员上限。');
}

export function membersPanel(ctx) {
  const id = encodeURIComponent(ctx.id);
  const closed = ctx.ledger.status !== 'active';
  const f = filtersFromSearch(location.search);
  // said once, above the list, by the next reload: a filter the admin chose was changed
  let note = dropHealthFilters(f) ? CLEARED : '';
  let page = Math.max(1, Number(new URLSearchParams(location.search).get('page')) || 1);
  let items = [];
  const selected = new Set();
  let alive = true;

  // -- stats ------------------------------------------------------------------------
  const statsBox = h('section', { class: 'card stats', 'aria-labelledby': 'stats-title' },
    h('h2', { id: 'stats-title', class: 'sr-only' }, '统计'));

  function statButton(label, count, filter, cls = '', chip = true) {
    const [k, v] = filter;
    const active = k === 'abnormal' ? f.abnormal : f[k] === v;
    return h('button', {
      type: 'button', class: `${chip ? 'stat-chip' : 'stat'} ${cls} ${active ? 'is-active' : ''}`, 'aria-pressed': active ? 'true' : 'false',
      dataset: { filter: k, value: String(v) }, title: `只看：${label}`,
      onclick: () => applyHealthFilter(k, v),
    }, h('span', { class: 'stat-num' }, String(count ?? 0)), h('span', { class: 'stat-label' }, label));
  }

  let abnormalCount = null; // from the latest stats, for the reminder's dialog
  async function loadStats() {
    try {
      const s = await api.get(`/api/ledgers/${id}/stats`);
      if (!alive) return;
      abnormalCount = s.abnormal ?? null;
      fill(statsBox, 
        h('h2', { id: 'stats-title', class: 'sr-only' }, '统计'),
        h('div', { class: 'stat-main' },
          h('div', { class: 'stat stat-total' }, h('span', { class: 'stat-num' }, String(s.members_total ?? 0)), h('span', { class: 'stat-label' }, '成员总数')),
          statButton('异常', s.abnormal, ['abnormal', true], 'stat-abnormal', false)),
        h('div', { class: 'stat-group' }, h('div', { class: 'stat-group-title' }, '健康码'),
          h('div', { class: 'stat-chips' }, ['green', 'yellow', 'red', 'unknown'].map((k) =>
            statButton(CODE_STATUS[k], s.code_status?.[k], ['code_status', k], `code-${k}`)))),
        h('div', { class: 'stat-group' }, h('div', { class: 'stat-group-title' }, '核酸'),
          h('div', { class: 'stat-chips' }, ['h24', 'h48', 'h72', 'older', 'none', 'pending'].map((k) =>
            statButton(TEST_AGE[k], s.test_age?.[k], ['test_age', k])))),
        h('div', { class: 'stat-group' }, h('div', { class: 'stat-group-title' }, '疫苗'),
          h('div', { class: 'stat-chips' }, ['booster', 'primary', 'incomplete', 'unsuitable', 'none_found'].map((k) =>
            statButton(VACCINATION[k], s.vaccination?.[k], ['vaccination', k])))),
        s.checked_from ? h('p', { class: 'muted small data-time' }, s.checked_from === s.checked_to
          ? `成员健康数据更新于 ${fmtTime(s.checked_from)}`
          : `成员健康数据更新于 ${fmtTime(s.checked_from)} 至 ${fmtTime(s.checked_to)}`) : null,
        closed ? null : capNotice(s.members_total ?? 0, ctx.ledger.member_cap),
      );
    } catch (err) {
      if (handleAuthError(err)) return;
      fill(statsBox, h('h2', { id: 'stats-title', class: 'sr-only' }, '统计'),
        isMissing(err) ? unavailableNotice('统计') : notice(errorText(err), 'error'));
    }
  }

  function markActiveStats() {
    for (const b of statsBox.querySelectorAll('[data-filter]')) {
      const k = b.dataset.filter;
      const on = k === 'abnormal' || k === 'no_test' ? !!f[k] : f[k] === b.dataset.value;
      b.classList.toggle('is-active', on);
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
    }
  }

  function applyHealthFilter(k, v) {
    const active = k === 'abnormal' || k === 'no_test' ? !!f[k] : f[k] === v;
    for (const key of HEALTH_KEYS) f[key] = key === 'abnormal' || key === 'no_test' ? false : '';
    if (!active) f[k] = v;
    if (!active && (f.status || 'active') !== 'active') {
      f.status = 'active';
      note = '健康筛选只适用于在册成员，已切换到“在册”成员。';
    }
    page = 1;
    syncControls();
    reload();
  }

  // -- comparison runs ------------------------------------------------------------------
  const lastSync = h('span', { class: 'last-sync' }, '上次全体比对：…');
  const syncBtn = button('立即比对', { class: 'btn btn-primary btn-small sync-now' });
  const syncMsg = h('div', { class: 'sync-msg', role: 'status', 'aria-live': 'polite' });
  const progress = h('progress', { class: 'sync-progress', max: 1, value: 0, hidden: true, 'aria-label': '比对进度' });
  const syncBox = h('section', { class: 'card sync-bar' },
    h('div', { class: 'sync-row' }, lastSync, closed ? null : syncBtn), progress, syncMsg);

  async function loadSync() {
    try {
      const s = await api.get(`/api/ledgers/${id}/sync`);
      // each person is checked on joining; a comparison of the whole ledger is another thing
      lastSync.textContent = (s.last_success_at ? `上次全体比对：${fmtTime(s.last_success_at)}`
        : '上次全体比对：尚未进行（成员加入时已各自与健康宝比对）')
        + (s.last_status === 'failed' ? '（最近一次比对未完成）' : '');
    } catch (err) {
      lastSync.textContent = isMissing(err) ? '上次全体比对：—' : `上次全体比对：${errorText(err)}`;
    }
  }

  async function followRun(runId) {
    progress.hidden = false;
    for (let i = 0; alive && i < 300; i += 1) {
      let r;
      try {
        r = await api.get(`/api/sync/runs/${encodeURIComponent(runId)}`);
      } catch (err) {
        syncMsg.textContent = errorText(err);
        break;
      }
      const total = r.ledgers_total || 0;
      progress.max = Math.max(total, 1);
      progress.value = r.ledgers_done + (r.ledgers_failed || 0);
      if (r.status !== 'running' && r.status !== 'pending') {
        progress.hidden = true;
        if (r.ledgers_failed) syncMsg.textContent = '比对未全部完成：健康宝暂时无法访问，部分数据可能不是最新的。';
        else syncMsg.textContent = `比对完成，共比对 ${r.people_compared ?? 0} 人。`;
        await Promise.all([loadSync(), loadStats(), reload()]);
        return;
      }
      syncMsg.textContent = `正在与健康宝比对…（已比对 ${r.people_compared ?? 0} 人）`;
      await sleep(1000);
    }
    progress.hidden = true;
  }

  syncBtn.addEventListener('click', () => busy(syncBtn, '比对中…', async () => {
    syncMsg.textContent = '';
    try {
      const r = await api.post(`/api/ledgers/${id}/sync`, {});
      await followRun(r.run_id);
    } catch (err) {
      if (handleAuthError(err)) return;
      if (err.code === 'rate_limited') {
        syncMsg.textContent = `刚刚比对过，请 ${err.details?.retry_after || 30} 秒后再试。`;
      } else syncMsg.textContent = errorText(err);
    }
  }));

  // -- filters ----------------------------------------------------------------------------
  const search = h('input', { type: 'search', id: 'member-q', name: 'q', placeholder: '姓名，或手机号后4位', value: f.q, enterkeyhint: 'search' });
  const searchForm = h('form', { class: 'search-row', role: 'search' },
    h('label', { for: 'member-q', class: 'sr-only' }, '按姓名搜索'), search,
    h('button', { type: 'submit', class: 'btn btn-small' }, '搜索'));
  const sel = (name, label, options, value) => field({ name, label, kind: 'select', options, value });
  const ctl = {
    abnormal: field({ name: 'abnormal', label: '只看异常', kind: 'checkbox', value: f.abnormal }),
    status: sel('status', '成员状态', Object.entries(STATUS), f.status || 'active'),
    code_status: sel('code_status', '健康码', [['', '全部'], ...Object.entries(CODE_STATUS)], f.code_status),
    test_age: sel('test_age', '核酸检测', [['', '全部'], ...Object.entries(TEST_AGE)], f.test_age),
    vaccination: sel('vaccination', '疫苗接种', [['', '全部'], ...Object.entries(VACCINATION)], f.vaccination),
    joined_from: field({ name: 'joined_from', label: '加入日期从', kind: 'date', value: f.joined_from }),
    joined_to: field({ name: 'joined_to', label: '至', kind: 'date', value: f.joined_to }),
    sort: sel('sort', '排序', [['', '默认'], ...Object.entries(SORT)], f.sort),
    order: sel('order', '顺序', Object.entries(ORDER), f.order || 'asc'),
  };
  const healthHint = h('p', { class: 'muted small health-hint', hidden: true }, HEALTH_ONLY_ACTIVE);
  const filterForm = h('form', { class: 'filter-form', novalidate: true },
    h('div', { class: 'filter-grid' }, Object.values(ctl).map((c) => c.wrap)),
    healthHint,
    h('div', { class: 'btn-row' },
      h('button', { type: 'submit', class: 'btn btn-primary btn-small' }, '应用筛选'),
      button('清除筛选', { class: 'btn btn-small', onclick: () => { Object.assign(f, emptyFilters()); search.value = ''; syncControls(); page = 1; reload(); } })));
  const filterDetails = h('details', { class: 'filters' }, h('summary', {}, '筛选和排序'), filterForm);
  const chips = h('div', { class: 'chips', 'aria-live': 'polite' });
  const filterMsg = h('div', { class: 'filter-msg', role: 'status', 'aria-live': 'polite' });

  /** Health controls are off while the status chosen is not 在册 (people who left have no health data). */
  function syncHealthControls() {
    const off = ctl.status.value !== 'active';
    for (const k of ['abnormal', 'code_status', 'test_age', 'vaccination']) ctl[k].input.disabled = off;
    const byTestDays = ctl.sort.input.querySelector('option[value=test_days]');
    if (byTestDays) byTestDays.disabled = off;
    healthHint.hidden = !off;
  }

  function syncControls() {
    search.value = f.q || '';
    for (const [k, c] of Object.entries(ctl)) {
      if (k === 'abnormal') c.value = !!f.abnormal;
      else if (k === 'status') c.value = f.status || 'active';
      else if (k === 'order') c.value = f.order || 'asc';
      else c.value = f[k] || '';
    }
    syncHealthControls();
  }

  ctl.status.input.addEventListener('change', () => {
    if (ctl.status.value !== 'active') {
      ctl.abnormal.value = false;
      for (const k of ['code_status', 'test_age', 'vaccination']) ctl[k].value = '';
      if (ctl.sort.value === 'test_days') ctl.sort.value = '';
    }
    syncHealthControls();
  });
  syncHealthControls();

  filterForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const health = HEALTH_KEYS.some((k) => f[k]) || f.sort === 'test_days';
    for (const [k, c] of Object.entries(ctl)) f[k] = c.value;
    if (!f.sort) f.order = '';
    f.q = search.value.trim();
    if (dropHealthFilters(f) || (health && f.status !== 'active')) note = CLEARED;
    page = 1;
    reload();
  });
  ctl.abnormal.input.addEventListener('change', () => { f.abnormal = ctl.abnormal.value; page = 1; reload(); });
  searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    f.q = search.value.trim();
    page = 1;
    reload();
  });

  function renderChips() {
    clear(chips);
    const active = describeFilters(f);
    if (!active.length) return;
    add(chips, h('span', { class: 'chips-label' }, '当前筛选：'));
    for (const [k, text] of active) {
      add(chips, h('button', {
        type: 'button', class: 'chip', 'aria-label': `取消筛选：${text}`,
        onclick: () => {
          if (k === 'joined') { f.joined_from = ''; f.joined_to = ''; } else if (k === 'sort') { f.sort = ''; f.order = ''; } else if (k === 'abnormal' || k === 'no_test') f[k] = false;
          else if (k === 'status') f.status = 'active';
          else f[k] = '';
          syncControls();
          page = 1;
          reload();
        },
      }, text, h('span', { 'aria-hidden': 'true' }, ' ×')));
    }
  }

  // -- actions bar: export and reminders ---------------------------------------------
  const actionMsg = h('div', { class: 'action-msg', role: 'status', 'aria-live': 'polite' });
  const xlsxBtn = button('导出 Excel', { class: 'btn btn-small export-xlsx' });
  const csvBtn = button('导出 CSV', { class: 'btn btn-small export-csv' });
  const remindBtn = button('发送防疫提醒', { class: 'btn btn-small remind' });

  async function exportAs(kind, btn) {
    await busy(btn, '正在导出…', async () => {
      actionMsg.textContent = '';
      try {
        const { blob, filename } = await fetchBlob(`/api/ledgers/${id}/export.${kind}${query(filterParams(f))}`);
        const name = filename || `${ctx.ledger.org_name}-成员-${fmtDate(new Date().toISOString()).replace(/-/g, '')}.${kind}`;
        const url = URL.createObjectURL(blob);
        const a = h('a', { href: url, download: name, hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
        actionMsg.textContent = `已导出 ${name}（证件号和手机号已脱敏）`;
      } catch (err) {
        if (handleAuthError(err)) return;
        actionMsg.textContent = isMissing(err) ? '导出功能暂未开放，敬请期待。' : errorText(err);
      }
    });
  }
  xlsxBtn.addEventListener('click', () => exportAs('xlsx', xlsxBtn));
  csvBtn.addEventListener('click', () => exportAs('csv', csvBtn));

  async function remind(memberIds) {
    // who gets one: every member failing any of the ledger's rules (the SMS names the rule)
    const who = memberIds ? `选中的 ${memberIds.length} 名成员中未满足防疫要求的成员`
      : `所有未满足本团体簿防疫要求的成员${abnormalCount != null ? `（当前 ${abnormalCount} 人）` : ''}`;
    const ok = await confirmDialog('发送防疫提醒',
      `将向${who}发送短信，短信写明其未满足的要求（如核酸超时、健康码非绿码），提醒其及时处理。每人每天最多提醒一次。确定发送吗？`, '发送');
    if (!ok) return;
    actionMsg.textContent = '正在发送…';
    try {
      const r = await api.post(`/api/ledgers/${id}/reminders`, memberIds ? { member_ids: memberIds } : {});
      const skipped = r.skipped ?? r.skipped_already_today ?? 0;
      actionMsg.textContent = `已发送 ${r.sent ?? 0} 条提醒`
        + (skipped ? `，${skipped} 人今天已提醒过` : '')
        + (r.not_abnormal ? `，${r.not_abnormal} 人目前无需提醒` : '') + '。';
      selected.clear();
      renderList();
    } catch (err) {
      if (handleAuthError(err)) return;
      actionMsg.textContent = isMissing(err) ? '提醒功能暂未开放，敬请期待。'
        : err.code === 'rate_limited' ? `提醒发送太频繁，请 ${err.details?.retry_after || 60} 秒后再试。` : errorText(err);
    }
  }
  remindBtn.addEventListener('click', () => remind(selected.size ? [...selected] : null));

  const actionsBar = h('div', { class: 'actions-bar' }, xlsxBtn, csvBtn, closed ? null : remindBtn);

  // -- list -------------------------------------------------------------------------------
  const listHead = h('div', { class: 'list-head' });
  const list = h('div', { class: 'member-list', 'aria-live': 'polite', 'aria-busy': 'false' });
  const pager = h('nav', { class: 'pager', 'aria-label': '分页' });
  const listNotice = h('div', { class: 'list-notice' });

  function memberCard(m) {
    const stale = m.stale;
    const active = m.status === 'active';
    const msg = h('div', { class: 'member-msg', role: 'status', 'aria-live': 'polite' });
    const card = h('article', {
      class: `member ${m.abnormal ? 'is-abnormal' : ''} ${active ? '' : 'is-left'}`,
      dataset: { memberId: m.member_id, name: m.name },
      'aria-label': m.name,
    });
    const pick = active && !closed ? h('input', {
      type: 'checkbox', class: 'pick', 'aria-label': `选择 ${m.name}`, checked: selected.has(m.member_id),
      onchange: (e) => { if (e.target.checked) selected.add(m.member_id); else selected.delete(m.member_id); updateRemindLabel(); },
    }) : null;
    const result = m.test_result ? TEST_RESULT[m.test_result] || m.test_result : null;
    add(card, 
      h('header', { class: 'member-head' },
        pick,
        h('span', { class: 'member-name' }, m.name),
        active ? codeBadge(m.code_status, m.popup) : h('span', { class: 'tag tag-muted' }, m.status === 'removed' ? '已移除' : '已退出'),
        m.abnormal ? h('span', { class: 'tag tag-abnormal' }, '异常') : null),
      h('dl', { class: 'member-facts' },
        h('dt', {}, '证件号'), h('dd', { class: 'mono' }, m.id_number || (active ? '—' : '已删除')),
        h('dt', {}, '手机号'), h('dd', { class: 'mono' }, m.phone || (active ? '—' : '已删除')),
        active ? [
          h('dt', {}, '核酸'), h('dd', { class: 'test' }, h('strong', {}, testDays(m.test_days)), result ? ` · ${result}` : ''),
          h('dt', {}, '疫苗'), h('dd', { class: 'vaccination' }, VACCINATION[m.vaccination] || (m.code_status === 'unknown' ? '—' : VACCINATION.none_found)),
        ] : [
          h('dt', {}, '离开'), h('dd', { class: 'left-why' }, `${fmtTime(m.left_at)} ${leftWhy(m)}`),
        ],
        h('dt', {}, '加入'), h('dd', {}, fmtTime(m.joined_at))),
      m.abnormal_reasons?.length ? h('ul', { class: 'reasons', 'aria-label': '异常原因' }, m.abnormal_reasons.map((r) => h('li', {}, r.label || r.code))) : null,
      active && stale ? h('p', { class: 'stale' }, `数据截至 ${fmtTime(m.synced_at || m.stale_since)}（健康宝暂时无法访问）`) : null,
      active && !m.synced_at && !stale ? h('p', { class: 'muted small' }, '尚未比对') : null,
      msg,
    );
    if (active && !closed) {
      const refresh = button('刷新', { class: 'btn btn-small refresh' });
      const one = button('提醒', { class: 'btn btn-small remind-one' });
      const remove = button('移除', { class: 'btn btn-small btn-danger-outline remove' });
      refresh.addEventListener('click', () => busy(refresh, '刷新中…', async () => {
        msg.textContent = '';
        try {
          const r = await api.post(`/api/ledgers/${id}/members/${encodeURIComponent(m.member_id)}/refresh`, {});
          Object.assign(m, r);
          const fresh = memberCard(m);
          card.replaceWith(fresh);
          fresh.querySelector('.member-msg').textContent = `已刷新（${fmtTime(r.synced_at)}）`;
        } catch (err) {
          if (handleAuthError(err)) return;
          msg.textContent = err.code === 'rate_limited' ? `刚刚刷新过，请 ${err.details?.retry_after || 30} 秒后再试。` : errorText(err);
        }
      }));
      one.addEventListener('click', () => remind([m.member_id]));
      remove.addEventListener('click', () => removeMember(m));
      add(card, h('div', { class: 'btn-row member-actions' }, refresh, one, remove));
    }
    return card;
  }

  async function removeMember(m) {
    const reason = field({ name: 'reason', label: '移除原因', kind: 'textarea', attrs: { maxlength: 200, placeholder: '例如：已离职' } });
    const done = await dialog({
      title: `移除 ${m.name}`,
      body: h('div', {}, h('p', {}, '移除后该成员的数据将从团体簿删除，并通知本人。'), reason.wrap),
      actions: [['cancel', '取消'], ['ok', '确定移除', 'danger']],
      onOk: async () => {
        const text = reason.value.trim();
        if (!text) { reason.setError('请填写移除原因'); reason.input.focus(); return false; }
        try {
          await api.del(`/api/ledgers/${id}/members/${encodeURIComponent(m.member_id)}`, { reason: text });
        } catch (err) {
          if (err.code === 'invalid_input') { reason.setError(reasonText('reason', err.details?.reasons?.reason || 'bad_format')); return false; }
          throw err;
        }
        return true;
      },
    });
    if (done) {
      actionMsg.textContent = `已移除 ${m.name}`;
      selected.delete(m.member_id);
      await Promise.all([reload(), loadStats()]);
    }
  }

  function updateRemindLabel() {
    remindBtn.textContent = selected.size ? `提醒选中的 ${selected.size} 人` : '发送防疫提醒';
  }

  let total = 0;
  function renderList() {
    clear(list);
    if (!items.length) {
      add(list, h('p', { class: 'muted empty' }, describeFilters(f).length ? '没有符合筛选条件的成员。' : closed ? '团体簿已关闭，成员数据已销毁。' : '还没有成员。把二维码分享出去，成员扫码即可加入。'));
    }
    for (const m of items) add(list, memberCard(m));
    updateRemindLabel();
  }

  function renderPager() {
    clear(pager);
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    if (pages <= 1) return;
    const prev = button('上一页', { class: 'btn btn-small', disabled: page <= 1, onclick: () => { page -= 1; reload(); } });
    const next = button('下一页', { class: 'btn btn-small', disabled: page >= pages, onclick: () => { page += 1; reload(); } });
    add(pager, prev, h('span', { class: 'page-no' }, `第 ${page} / ${pages} 页`), next);
  }

  let seq = 0;
  async function reload() {
    seq += 1;
    const mine = seq;
    renderChips();
    markActiveStats();
    filterMsg.textContent = note;
    note = '';
    const params = { ...filterParams(f), page, page_size: PAGE_SIZE };
    const keep = new URLSearchParams(query({ ...filterParams(f), page: page > 1 ? page : '' }));
    history.replaceState({}, '', `${location.pathname}${keep.toString() ? `?${keep}` : ''}${location.hash}`);
    list.setAttribute('aria-busy', 'true');
    try {
      const r = await api.get(`/api/ledgers/${id}/members${query(params)}`);
      if (mine !== seq || !alive) return;
      items = r.items || [];
      total = r.total ?? items.length;
      fill(listHead, h('span', { class: 'count' }, `共 ${total} 人`));
      clear(listNotice);
      if (items.some((m) => !matches(m, f))) {
        add(listNotice, notice('部分筛选条件暂不支持，列表可能包含不符合条件的成员。', 'muted'));
      }
      renderList();
      renderPager();
    } catch (err) {
      if (handleAuthError(err)) return;
      if (mine !== seq) return;
      fill(list, notice(errorText(err), 'error'));
    } finally {
      if (mine === seq) list.setAttribute('aria-busy', 'false');
    }
  }

  const panel = h('div', { class: 'members-panel' },
    statsBox,
    syncBox,
    h('section', { class: 'card list-card', 'aria-labelledby': 'list-title' },
      h('h2', { id: 'list-title' }, '成员'),
      searchForm, filterDetails, chips, filterMsg, actionsBar, actionMsg, listNotice, listHead, list, pager));

  loadStats();
  loadSync();
  reload();
  return { el: panel, dispose: () => { alive = false; }, reload: () => Promise.all([reload(), loadStats(), loadSync()]) };
}
