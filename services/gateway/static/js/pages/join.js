// 加入团体簿: who is asking (org, address, masked admin), the consent, the form,
// the SMS code, then "已加入".

import { api, request, setToken } from '../api.js';
import { codeStep, waitForChallenge } from '../code-step.js';
import { errorText } from '../errors.js';
import { liveValidation, personBody, personFields, validateForm } from '../person.js';
import { add, busy, clear, field, fill, Form, h, notice, setTitle } from '../ui.js';

const QR_INVALID = '二维码无效或已更新，请向机构索取新的二维码';

export default async function join(root, token) {
  setTitle('加入团体簿');
  root.dataset.page = 'join';
  const loading = h('p', { class: 'loading' }, '正在读取团体簿信息…');
  add(root, loading);
  let info;
  try {
    info = await api.get(`/api/join/${encodeURIComponent(token)}`, { auth: false });
  } catch (err) {
    loading.remove();
    if (err.status === 404 || err.code === 'not_found') {
      add(root, h('section', { class: 'card invalid-qr' },
        h('h1', {}, '无法加入'),
        notice(QR_INVALID, 'error')));
    } else {
      add(root, h('section', { class: 'card' }, h('h1', {}, '加入团体簿'), notice(errorText(err), 'error'),
        h('button', { type: 'button', class: 'btn', onclick: () => location.reload() }, '重试')));
    }
    return;
  }
  loading.remove();

  const open = info.status === 'active';
  const orgCard = h('section', { class: 'card org-card', 'aria-labelledby': 'org-title' },
    h('div', { class: 'kicker' }, open ? '您正在加入以下机构的团体簿' : '以下机构的团体簿'),
    h('h1', { id: 'org-title', class: 'org-name' }, info.org_name),
    h('dl', { class: 'facts' },
      h('dt', {}, '机构地址'), h('dd', { class: 'org-address' }, info.org_address || '—'),
      h('dt', {}, '管理员'), h('dd', { class: 'org-admin' }, info.admin_name || '—'),
      h('dt', {}, '状态'), h('dd', { class: 'org-status' }, info.status === 'closed' ? '已关闭' : '正常')),
    open ? h('p', { class: 'muted' }, '请核对机构名称和管理员，确认是您要加入的机构后再填写。') : null);
  add(root, orgCard);

  if (!open) {
    add(root, notice('该团体簿已关闭，不再接受加入。', 'error'));
    return;
  }

  const consent = info.consent || {};
  const agree = field({ name: 'consent', label: '我已阅读并同意以上内容，自愿加入', kind: 'checkbox' });
  const consentCard = h('section', { class: 'card consent', 'aria-labelledby': 'consent-title' },
    h('h2', { id: 'consent-title' }, '个人信息使用说明'),
    h('p', { class: 'consent-text' }, consent.text || ''),
    h('p', { class: 'muted small' }, `版本 ${consent.version || ''}`),
    agree.wrap);

  const fields = personFields('', { name: '姓名', id_number: '证件号码', phone: '手机号' });
  const form = new Form([...fields, agree]);
  liveValidation(form, '');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, '下一步：获取验证码');
  const formEl = h('form', { class: 'join-form', novalidate: true },
    consentCard,
    h('section', { class: 'card', 'aria-labelledby': 'me-title' },
      h('h2', { id: 'me-title' }, '填写本人信息'),
      fields.map((f) => f.wrap),
      form.general,
      submit));
  const stepBox = h('div', { class: 'step' });
  add(root, formEl, stepBox);

  function backToForm() {
    clear(stepBox);
    formEl.hidden = false;
    orgCard.hidden = false;
  }

  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    const ok = validateForm(form, '');
    if (!agree.value) {
      agree.setError('请阅读并勾选同意后再加入');
      if (ok) agree.input.focus();
      return;
    }
    if (!ok) return;
    const body = { ...personBody(form.values(), ''), consent: true, consent_version: consent.version };
    await busy(submit, '正在核验身份…', async () => {
      try {
        const { status, data } = await request('POST', `/api/join/${encodeURIComponent(token)}`, { body, auth: false });
        let challenge = data;
        if (status === 202 || data.status === 'pending') {
          submit.textContent = '正在向健康宝核验…';
          challenge = await waitForChallenge(data.challenge_id);
        }
        formEl.hidden = true;
        fill(stepBox, codeStep({
          challengeId: data.challenge_id,
          maskedPhone: challenge.masked_phone || data.masked_phone,
          resendAfter: challenge.resend_after ?? 60,
          phone: body.phone,
          confirmText: '确认加入',
          onBack: backToForm,
          onConfirmed: (result) => joined(result),
        }));
      } catch (err) {
        // the link was rotated (or the ledger deleted) since the page opened
        if (err.code === 'not_found') form.setGeneral(QR_INVALID);
        else if (err.code === 'conflict' || err.code === 'network' || err.code === 'unavailable') form.setGeneral(errorText(err));
        else form.showApiError(err);
      }
    });
  });

  function joined(result) {
    setToken(result.token);
    orgCard.hidden = true;
    fill(stepBox, h('section', { class: 'card done joined', 'aria-live': 'polite' },
      h('div', { class: 'done-mark', 'aria-hidden': 'true' }, '✓'),
      h('h1', {}, '已加入'),
      h('p', {}, `您已加入“${info.org_name}”的团体簿。`),
      result.membership_status === 'activating' ? h('p', { class: 'muted' }, '正在开通，稍后即可在“我的”中看到。') : null,
      h('p', { class: 'muted' }, '您可以随时在“我的”中查看谁查看了您的数据，或退出团体簿。'),
      h('a', { class: 'btn btn-primary btn-block', href: '/me' }, '去“我的”')));
  }
}
