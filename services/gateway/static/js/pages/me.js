// 我的: the ledgers I joined (recheck, who viewed my data, leave), the ledgers I
// administer, logout.

import { api, isMissing, query, setToken } from '../api.js';
import { errorText } from '../errors.js';
import { handleAuthError, navigate, requireLogin } from '../nav.js';
import { add, busy, button, clear, codeBadge, confirmDialog, fill, fmtTime, h, notice, pagedList, ROLE, setTitle, TEST_RESULT, testDays, unavailableNotice, VACCINATION } from '../ui.js';

const VIEW_LABELS = {
  members: '查看成员列表', member_list: '查看成员列表', list: '查看成员列表',
  export: '导出成员数据', export_xlsx: '导出成员数据（Excel）', export_csv: '导出成员数据（CSV）',
  'export.xlsx': '导出成员数据（Excel）', 'export.csv': '导出成员数据（CSV）',
  member: '查看成员详情', stats: '查看统计', refresh: '刷新成员状态', alerts: '查看预警', reminders: '发送提醒',
};
export function viewLabel(v) { return VIEW_LABELS[v] || v || '查看'; }

export default async function me(root) {
  setTitle('我的');
  root.dataset.page = 'me';
  if (!requireLogin()) return;
  const loading = h('p', { class: 'loading' }, '加载中…');
  add(root, h('h1', { class: 'page-title' }, '我的'), loading);

  let memberships;
  let ledgers;
  try {
    [memberships, ledgers] = await Promise.all([
      api.get('/api/me/memberships'),
      api.get('/api/me/ledgers').catch((err) => { if (err.status === 401) throw err; return { items: [], error: err }; }),
    ]);
  } catch (err) {
    if (handleAuthError(err)) return;
    loading.replaceWith(notice(errorText(err), 'error'));
    return;
  }
  loading.remove();

  const joinedList = h('div', { class: 'list memberships' });
  const joinedSection = h('section', { class: 'section', 'aria-labelledby': 'joined-title' },
    h('h2', { id: 'joined-title' }, '我加入的团体簿'), joinedList);
  const items = memberships.items || [];
  if (!items.length) add(joinedList, h('p', { class: 'muted empty' }, '您还没有加入任何团体簿。扫描机构的二维码即可加入。'));
  for (const m of items) add(joinedList, membershipCard(m));

  const adminList = h('div', { class: 'list admin-ledgers' });
  const adminSection = h('section', { class: 'section', 'aria-labelledby': 'admin-title' },
    h('h2', { id: 'admin-title' }, '我管理的团体簿'), adminList);
  if (ledgers.error) add(adminList, notice(errorText(ledgers.error), 'error'));
  else if (!ledgers.items?.length) add(adminList, h('p', { class: 'muted empty' }, '暂无。', h('a', { href: '/create' }, '创建团体簿')));
  for (const l of ledgers.items || []) {
    add(adminList, h('a', { class: 'card card-link ledger-link', href: `/ledger/${encodeURIComponent(l.ledger_id)}` },
      h('div', { class: 'card-title' }, l.org_name),
      h('div', { class: 'meta' }, h('span', { class: 'tag' }, ROLE[l.role] || l.role),
        h('span', { class: `tag ${l.status === 'active' ? 'tag-ok' : 'tag-muted'}` }, l.status === 'active' ? '使用中' : '已关闭'))));
  }

  const logout = button('退出登录', { class: 'btn btn-block logout' });
  logout.addEventListener('click', () => busy(logout, '正在退出…', async () => {
    try { await api.post('/api/logout', {}); } catch { /* the token is forgotten either way */ }
    setToken(null);
    navigate('/', { replace: true });
  }));

  add(root, joinedSection, adminSection, h('section', { class: 'section' }, logout));
}

function membershipCard(m) {
  const id = encodeURIComponent(m.membership_id);
  const active = m.status === 'active';
  const out = h('div', { class: 'card-detail', 'aria-live': 'polite' });
  const viewsBox = h('div', { class: 'views', hidden: true });
  const card = h('article', { class: 'card membership', dataset: { membershipId: m.membership_id } },
    h('div', { class: 'card-title' }, m.org_name),
    h('div', { class: 'meta' },
      h('span', {}, `加入于 ${fmtTime(m.joined_at)}`),
      h('span', { class: `tag ${active ? 'tag-ok' : 'tag-muted'}` },
        active ? '已加入' : m.ledger_status === 'closed' || m.status === 'closed' ? '团体簿已关闭' : '已退出')),
    out, viewsBox);
  if (!active) return card;

  const recheck = button('状态不对？', { class: 'btn btn-small' });
  const views = button('谁查看了我的数据', { class: 'btn btn-small' });
  const leave = button('退出', { class: 'btn btn-small btn-danger-outline' });
  add(card, h('div', { class: 'btn-row' }, recheck, views, leave));

  recheck.addEventListener('click', () => busy(recheck, '正在核对…', async () => {
    clear(out);
    try {
      const r = await api.post(`/api/me/memberships/${id}/recheck`, {});
      add(out, h('div', { class: 'recheck-result' },
        h('p', {}, '已与健康宝重新核对：'),
        h('ul', { class: 'health-summary' },
          h('li', {}, '健康码：', codeBadge(r.code_status, r.popup)),
          h('li', {}, `核酸：${testDays(r.test_days)}${r.test_result ? ` · ${TEST_RESULT[r.test_result] || r.test_result}` : ''}`),
          h('li', {}, `疫苗：${VACCINATION[r.vaccination] || '未查询到接种信息'}`)),
        r.synced_at ? h('p', { class: 'muted small' }, `核对时间 ${fmtTime(r.synced_at)}`) : null));
    } catch (err) {
      if (handleAuthError(err)) return;
      if (err.code === 'rate_limited') {
        add(out, notice(`刚刚已核对过，请 ${err.details?.retry_after || 30} 秒后再试。`, 'info'));
      } else add(out, notice(errorText(err), 'error'));
    }
  }));

  views.addEventListener('click', () => {
    if (!viewsBox.hidden) { viewsBox.hidden = true; return; }
    return busy(views, '加载中…', async () => {
      clear(viewsBox);
      viewsBox.hidden = false;
      try {
        const list = await pagedList({
          load: (page) => api.get(`/api/me/memberships/${id}/views${query({ page, page_size: 20 })}`),
          // admins by masked name and role (their phones are not shown to members)
          renderItem: (v) => h('li', { dataset: { adminId: v.admin_id || '' } },
            h('span', { class: 'who' }, v.admin_name || '管理员'),
            v.role ? h('span', { class: 'tag' }, ROLE[v.role] || v.role) : null,
            h('span', { class: 'what' }, viewLabel(v.view)),
            h('time', { datetime: v.at }, fmtTime(v.at))),
          cls: 'view-log',
          empty: '还没有管理员查看过您的数据。',
        });
        add(viewsBox, h('h3', {}, '谁查看了我的数据'), list);
      } catch (err) {
        if (handleAuthError(err)) return;
        add(viewsBox, isMissing(err) ? unavailableNotice('查看记录') : notice(errorText(err), 'error'));
      }
    });
  });

  leave.addEventListener('click', async () => {
    const ok = await confirmDialog('退出团体簿', `确定退出“${m.org_name}”的团体簿吗？退出后，您的证件号、手机号和健康信息会立即删除，管理员只能看到您的姓名和退出时间。`, '确定退出', 'danger');
    if (!ok) return;
    await busy(leave, '正在退出…', async () => {
      try {
        await api.post(`/api/me/memberships/${id}/leave`, {});
        fill(card, h('div', { class: 'card-title' }, m.org_name), notice('您已退出该团体簿，个人数据已删除。', 'ok'));
        card.classList.add('left');
      } catch (err) {
        if (handleAuthError(err)) return;
        fill(out, notice(errorText(err), 'error'));
      }
    });
  });
  return card;
}
