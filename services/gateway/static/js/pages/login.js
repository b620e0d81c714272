// 登录: phone → SMS code → back to where the person came from (or 我的).

import { api, setToken } from '../api.js';
import { codeStep } from '../code-step.js';
import { errorText, reasonText } from '../errors.js';
import { navigate, safeNext } from '../nav.js';
import { add, busy, clear, field, fill, Form, h, setTitle } from '../ui.js';
import { checkPhone, cleanPhone } from '../validate.js';

export default function login(root) {
  setTitle('登录');
  root.dataset.page = 'login';
  const next = safeNext(new URLSearchParams(location.search).get('next'));
  const phone = field({
    name: 'phone', label: '手机号', kind: 'tel',
    hint: '使用创建或加入团体簿时验证过的手机号',
    attrs: { autocomplete: 'tel', inputmode: 'numeric', maxlength: 16 },
  });
  const form = new Form([phone]);
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, '获取验证码');
  const formEl = h('form', { class: 'card', novalidate: true },
    h('h1', {}, '登录'),
    h('p', { class: 'muted' }, '登录后可查看您加入的团体簿和您管理的团体簿。'),
    phone.wrap, form.general, submit,
    h('p', { class: 'muted small' }, '还没有团体簿？', h('a', { href: '/create' }, '创建团体簿')));
  const stepBox = h('div', { class: 'step' });
  add(root, formEl, stepBox);

  phone.input.addEventListener('input', () => phone.setError(''));
  phone.input.addEventListener('blur', () => setTimeout(() => {
    // later, so a tap on the button below still lands on it when the message appears
    if (!phone.input.isConnected || !phone.value.trim()) return;
    const r = checkPhone(phone.value);
    phone.setError(r ? reasonText('phone', r) : '');
  }, 250));

  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    form.clearErrors();
    const r = checkPhone(phone.value);
    if (r) { phone.setError(reasonText('phone', r)); phone.input.focus(); return; }
    const number = cleanPhone(phone.value);
    await busy(submit, '发送中…', async () => {
      try {
        const c = await api.post('/api/login', { phone: number }, { auth: false });
        formEl.hidden = true;
        fill(stepBox, codeStep({
          challengeId: c.challenge_id,
          maskedPhone: c.masked_phone,
          resendAfter: c.resend_after ?? 60,
          phone: number,
          confirmText: '登录',
          onBack: () => { clear(stepBox); formEl.hidden = false; },
          onConfirmed: (result) => {
            setToken(result.token);
            navigate(next, { replace: true });
          },
        }));
      } catch (err) {
        if (err.field === 'phone' || err.code === 'invalid_input') form.showApiError(err);
        else form.setGeneral(errorText(err));
      }
    });
  });
}
