// The settings tab: abnormality rules, co-admins (add by SMS, remove, transfer
// ownership), the access log and closing the ledger.

import { api, isMissing, query, request } from '../api.js';
import { codeStep, waitForChallenge } from '../code-step.js';
import { errorText } from '../errors.js';
import { handleAuthError } from '../nav.js';
import { liveValidation, personBody, personFields, validateForm } from '../person.js';
import { add, busy, button, clear, confirmDialog, field, fill, fmtTime, Form, h, notice, pagedList, ROLE, unavailableNotice } from '../ui.js';
import { describeFilters } from './filters.js';

const VIEW = {
  members: '查看成员列表', member_list: '查看成员列表', list: '查看成员列表', stats: '查看统计',
  export: '导出', export_xlsx: '导出 Excel', export_csv: '导出 CSV', 'export.xlsx': '导出 Excel', 'export.csv': '导出 CSV',
  member: '查看成员', refresh: '刷新成员', alerts: '查看预警', reminders: '发送提醒',
};

export function settingsPanel(ctx) {
  const owner = ctx.ledger.my_role === 'owner';
  const active = ctx.ledger.status === 'active';
  const parts = [rulesCard(ctx, owner && active, !active), adminsCard(ctx, owner && active)];
  parts.push(accessLogCard(ctx, owner));
  if (owner && active) parts.push(closeCard(ctx));
  const el = h('div', { class: 'settings-panel' }, parts.map((p) => p.el));
  return { el, dispose: () => parts.forEach((p) => p.dispose?.()) };
}

// -- rules ----------------------------------------------------------------------------

function rulesCard(ctx, canEdit, closed = false) {
  const id = encodeURIComponent(ctx.id);
  const maxAge = field({
    name: 'max_test_age_hours', label: '核酸检测时效', kind: 'select',
    options: [['', '不要求'], ['24', '24小时内'], ['48', '48小时内'], ['72', '72小时内'], ['168', '7天内']],
  });
  const minVac = field({
    name: 'min_vaccination', label: '疫苗接种要求', kind: 'select',
    options: [['', '不要求'], ['primary', '至少完成基础免疫'], ['booster', '完成加强免疫']],
  });
  const green = field({ name: 'require_green_code', label: '健康码非“未见异常”视为异常', kind: 'checkbox' });
  const popup = field({ name: 'popup_is_abnormal', label: '健康码弹窗视为异常', kind: 'checkbox' });
  const form = new Form([maxAge, minVac, green, popup]);
  const labels = h('ul', { class: 'rule-labels muted small', 'aria-label': '当前规则' });
  const save = h('button', { type: 'submit', class: 'btn btn-primary' }, '保存规则');
  const msg = h('div', { class: 'action-msg', role: 'status', 'aria-live': 'polite' });
  const body = h('form', { class: 'rules-form', novalidate: true },
    h('p', { class: 'muted' }, '不符合以下规则的成员会被标为“异常”，并产生预警。'),
    labels,
    maxAge.wrap, minVac.wrap, green.wrap, popup.wrap, form.general,
    canEdit ? save : h('p', { class: 'muted small' }, closed ? '团体簿已关闭，规则不再使用。' : '仅团体簿所有者可以修改规则。'), msg);
  body.hidden = true;
  const box = h('div', {}, h('p', { class: 'loading' }, '加载中…'));
  const el = h('section', { class: 'card rules-card', 'aria-labelledby': 'rules-title' }, h('h2', { id: 'rules-title' }, '异常规则'), box, body);

  function showRules(answer) {
    // the rules, flat as specified, or wrapped as {rules, rule_labels}
    const r = answer && typeof answer.rules === 'object' && answer.rules ? answer.rules : answer || {};
    fill(labels, (answer?.rule_labels || []).map((t) => h('li', {}, t)));
    maxAge.value = r.max_test_age_hours == null ? '' : String(r.max_test_age_hours);
    minVac.value = r.min_vaccination || '';
    green.value = !!r.require_green_code;
    popup.value = !!r.popup_is_abnormal;
  }
  for (const f of [maxAge, minVac, green, popup]) f.input.disabled = !canEdit;

  (async () => {
    try {
      showRules(await api.get(`/api/ledgers/${id}/rules`));
      box.remove();
      body.hidden = false;
    } catch (err) {
      if (handleAuthError(err)) return;
      fill(box, isMissing(err) ? unavailableNotice('异常规则') : notice(errorText(err), 'error'));
    }
  })();

  body.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!canEdit) return;
    form.clearErrors();
    msg.textContent = '';
    const rules = {
      max_test_age_hours: maxAge.value ? Number(maxAge.value) : null,
      min_vaccination: minVac.value || null,
      require_green_code: green.value,
      popup_is_abnormal: popup.value,
    };
    return busy(save, '保存中…', async () => {
      try {
        const r = await api.put(`/api/ledgers/${id}/rules`, rules);
        if (r && typeof r === 'object' && ('require_green_code' in r || r.rules)) showRules(r);
        msg.textContent = '规则已保存，成员的异常状态将按新规则计算。';
        ctx.refreshMembers?.();
      } catch (err) {
        if (handleAuthError(err)) return;
        form.showApiError(err);
      }
    });
  });
  return { el };
}

// -- co-admins ------------------------------------------------------------------------

function adminsCard(ctx, isOwner) {
  const id = encodeURIComponent(ctx.id);
  const list = h('div', { class: 'admin-list' });
  const msg = h('div', { class: 'action-msg', role: 'status', 'aria-live': 'polite' });
  const step = h('div', { class: 'step' });
  const addToggle = isOwner ? button('添加管理员', { class: 'btn btn-small add-admin' }) : null;

  // the add form (owner only)
  const fields = personFields('', { name: '管理员姓名', id_number: '证件号码', phone: '手机号', phoneHint: '须为其健康宝登记的手机号，验证码将发送到该手机' });
  const form = new Form(fields);
  liveValidation(form, '');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, '发送验证码');
  const addForm = h('form', { class: 'add-admin-form', novalidate: true, hidden: true },
    h('h3', {}, '添加管理员'),
    h('p', { class: 'muted small' }, '管理员可以查看成员、导出和提醒。对方须通过健康宝身份核验，并把收到的验证码告诉您。'),
    fields.map((f) => f.wrap), form.general,
    h('div', { class: 'btn-row' }, submit, button('取消', { class: 'btn', onclick: () => { addForm.hidden = true; } })));
  addToggle?.addEventListener('click', () => { addForm.hidden = !addForm.hidden; clear(step); });

  async function load() {
    try {
      const r = await api.get(`/api/ledgers/${id}/admins`);
      render(r.items || []);
    } catch (err) {
      if (handleAuthError(err)) return;
      if (isMissing(err)) {
        // fall back to the admins listed with the ledger; adding is not possible yet
        render(ctx.ledger.admins || [], true);
        add(list, unavailableNotice('管理员管理'));
        if (addToggle) addToggle.hidden = true;
      } else fill(list, notice(errorText(err), 'error'));
    }
  }

  function render(admins, readOnly = false) {
    clear(list);
    if (!admins.length) add(list, h('p', { class: 'muted' }, '暂无管理员信息。'));
    for (const a of admins) {
      const row = h('div', { class: 'admin-row', dataset: { adminId: a.admin_id } },
        h('div', { class: 'admin-who' },
          h('strong', {}, a.name || '—'),
          h('span', { class: 'mono muted' }, a.phone || ''),
          h('span', { class: `tag ${a.role === 'owner' ? 'tag-owner' : ''}` }, ROLE[a.role] || a.role),
          a.status && a.status !== 'active' ? h('span', { class: 'tag tag-muted' }, a.status === 'pending' ? '待验证' : a.status) : null));
      if (isOwner && !readOnly && a.role !== 'owner') {
        const actions = h('div', { class: 'btn-row' });
        if (a.status === 'active') {
          const transfer = button('转让所有权', { class: 'btn btn-small transfer' });
          transfer.addEventListener('click', () => transferTo(a, transfer));
          add(actions, transfer);
        }
        const remove = button('移除', { class: 'btn btn-small btn-danger-outline remove-admin' });
        remove.addEventListener('click', async () => {
          const ok = await confirmDialog('移除管理员', `确定移除管理员 ${a.name || ''} 吗？移除后对方将无法查看本团体簿。`, '移除', 'danger');
          if (!ok) return;
          await busy(remove, '移除中…', async () => {
            try {
              await api.del(`/api/ledgers/${id}/admins/${encodeURIComponent(a.admin_id)}`);
              msg.textContent = '已移除管理员';
              await load();
            } catch (err) { msg.textContent = errorText(err); }
          });
        });
        add(actions, remove);
        add(row, actions);
      }
      add(list, row);
    }
  }

  addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!validateForm(form, '')) return;
    const body = personBody(form.values(), '');
    await busy(submit, '正在核验身份…', async () => {
      try {
        const { data } = await request('POST', `/api/ledgers/${id}/admins`, { body });
        let challenge = data;
        if (data.status === 'pending' || !data.masked_phone) challenge = await waitForChallenge(data.challenge_id);
        addForm.hidden = true;
        fill(step, codeStep({
          challengeId: data.challenge_id,
          maskedPhone: challenge.masked_phone || data.masked_phone,
          resendAfter: challenge.resend_after ?? 60,
          phone: body.phone,
          title: '输入新管理员收到的验证码',
          recipient: '新管理员的手机 ',
          confirmText: '确认添加',
          onBack: () => { clear(step); addForm.hidden = false; },
          // the session this confirmation opens is the new admin's: never keep it here
          onConfirmed: async () => {
            clear(step);
            for (const f of fields) f.value = f.name === 'id_type' ? 'resident_id' : '';
            msg.textContent = '已添加管理员';
            await load();
          },
        }));
      } catch (err) {
        if (handleAuthError(err)) return;
        if (isMissing(err)) form.setGeneral('添加管理员功能暂未开放，敬请期待。');
        else form.showApiError(err);
      }
    });
  });

  async function transferTo(a, btn) {
    const ok = await confirmDialog('转让所有权', `将团体簿所有权转让给 ${a.name || '该管理员'}？转让后您将成为普通管理员，不能再修改规则、管理管理员或关闭团体簿。需要短信验证确认。`, '继续', 'danger');
    if (!ok) return;
    await busy(btn, '请稍候…', async () => {
      try {
        const c = await api.post(`/api/ledgers/${id}/owner`, { admin_id: a.admin_id });
        const challenge = c.masked_phone ? c : await waitForChallenge(c.challenge_id);
        fill(step, codeStep({
          challengeId: c.challenge_id,
          maskedPhone: challenge.masked_phone,
          resendAfter: challenge.resend_after ?? 60,
          title: '短信确认转让所有权',
          recipient: '您的手机 ',
          confirmText: '确认转让',
          onBack: () => clear(step),
          onConfirmed: async () => {
            fill(step, notice('所有权已转让。', 'ok'));
            await ctx.reloadLedger({ until: (l) => l.my_role !== 'owner' });
          },
        }));
      } catch (err) {
        if (handleAuthError(err)) return;
        msg.textContent = isMissing(err) ? '转让所有权功能暂未开放，敬请期待。' : errorText(err);
      }
    });
  }

  const el = h('section', { class: 'card admins-card', 'aria-labelledby': 'admins-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'admins-title' }, '管理员'), addToggle),
    list, msg, addForm, step);
  load();
  return { el };
}

// -- access log ---------------------------------------------------------------------

function filtersText(filters) {
  if (!filters || typeof filters !== 'object') return '';
  return describeFilters({ ...filters, abnormal: filters.abnormal === true || filters.abnormal === 'true' }).map(([, t]) => t).join('，');
}

const LOG_PAGE_SIZE = 20;

export function accessLogCard(ctx, isOwner) {
  const id = encodeURIComponent(ctx.id);
  const box = h('div', { class: 'access-log' });
  const el = h('section', { class: 'card access-card', 'aria-labelledby': 'log-title' },
    h('h2', { id: 'log-title' }, '查看记录'),
    h('p', { class: 'muted small' }, '管理员每次查看或导出成员数据都会被记录，成员本人也能看到。'), box);
  if (!isOwner) {
    add(box, notice('仅团体簿所有者可以查看完整的查看记录。', 'muted'));
    return { el };
  }
  (async () => {
    try {
      // who, as the admins list above shows them: masked name and phone, role
      add(box, await pagedList({
        load: (page) => api.get(`/api/ledgers/${id}/access-log${query({ page, page_size: LOG_PAGE_SIZE })}`),
        renderItem: (x) => {
          const ft = filtersText(x.filters);
          return h('li', { dataset: { adminId: x.admin_id || '' } },
            h('div', {}, h('strong', {}, x.admin_name || '管理员'), ' ',
              x.admin_phone ? h('span', { class: 'mono muted' }, x.admin_phone) : null, ' ',
              h('span', { class: 'tag' }, ROLE[x.role] || x.role || ''),
              ' ', h('span', {}, VIEW[x.view] || x.view || '查看')),
            h('div', { class: 'muted small' }, fmtTime(x.at), ft ? ` · 筛选：${ft}` : ''));
        },
        cls: 'log-list',
      }));
    } catch (err) {
      if (handleAuthError(err)) return;
      add(box, isMissing(err) ? unavailableNotice('查看记录') : err.code === 'forbidden' ? notice('仅团体簿所有者可以查看。', 'muted') : notice(errorText(err), 'error'));
    }
  })();
  return { el };
}

// -- closing ---------------------------------------------------------------------------

function closeCard(ctx) {
  const id = encodeURIComponent(ctx.id);
  const closeBtn = button('关闭团体簿', { class: 'btn btn-danger close-ledger' });
  const msg = h('div', { class: 'action-msg', role: 'status', 'aria-live': 'polite' });
  const step = h('div', { class: 'step' });
  closeBtn.addEventListener('click', async () => {
    const ok = await confirmDialog('关闭团体簿', `确定关闭“${ctx.ledger.org_name}”的团体簿吗？关闭后二维码失效，全部成员数据将被销毁且无法恢复。需要短信验证确认。`, '继续关闭', 'danger');
    if (!ok) return;
    await busy(closeBtn, '请稍候…', async () => {
      msg.textContent = '';
      try {
        const c = await api.post(`/api/ledgers/${id}/close`, {});
        closeBtn.hidden = true;
        fill(step, codeStep({
          challengeId: c.challenge_id,
          maskedPhone: c.masked_phone,
          resendAfter: c.resend_after ?? 60,
          title: '短信确认关闭团体簿',
          recipient: '您的手机 ',
          confirmText: '确认关闭',
          onBack: () => { clear(step); closeBtn.hidden = false; },
          onConfirmed: async (result) => {
            fill(step, notice(result.ledger_status === 'closed' ? '团体簿已关闭，成员数据已销毁。' : '正在关闭团体簿…', 'ok'));
            await ctx.reloadLedger({ until: (l) => l.status === 'closed' });
          },
        }));
      } catch (err) {
        if (handleAuthError(err)) return;
        msg.textContent = errorText(err);
      }
    });
  });
  const el = h('section', { class: 'card danger-zone', 'aria-labelledby': 'close-title' },
    h('h2', { id: 'close-title' }, '关闭团体簿'),
    h('p', { class: 'muted' }, '关闭后二维码立即失效，成员不能再加入；全部成员数据随之销毁，无法恢复。'),
    closeBtn, msg, step);
  return { el };
}
