// The SMS code step every verification ends with: "验证码已发送至 138****5678",
// a code field, confirm, and resend with a countdown.

import { api, devSmsAvailable } from './api.js';
import { errorText, identityText, reasonText } from './errors.js';
import { busy, button, field, h } from './ui.js';
import { checkCode } from './validate.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Wait until a pending challenge has its code sent (or is rejected).
 * Resolves to the challenge description; rejects with an ApiError-like object.
 */
export async function waitForChallenge(challengeId, { timeoutMs = 60000, signal } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal?.aborted) throw Object.assign(new Error('aborted'), { code: 'aborted' });
    let c;
    try {
      c = await api.get(`/api/challenges/${encodeURIComponent(challengeId)}`, { auth: false });
    } catch (err) {
      // verify records the challenge once the Health Kit has answered: while that is
      // slow, the challenge is not found yet (a wrong link would be, but this id came
      // from the server a moment ago)
      if (err?.status !== 404) throw err;
      c = { status: 'pending' };
    }
    if (c.status === 'code_sent') return c;
    if (c.status === 'rejected' || c.status === 'failed' || c.status === 'expired') {
      const reason = c.reason || (c.status === 'failed' ? 'too_many_attempts' : c.status);
      throw Object.assign(new Error(c.message || 'rejected'), {
        code: 'identity_rejected', field: null, details: { reason, challenge_id: challengeId },
      });
    }
    if (Date.now() > deadline) {
      throw Object.assign(new Error('timeout'), { code: 'unavailable', details: {} });
    }
    await sleep(1000);
  }
}

/**
 * Build the code step.
 * opts: challengeId, maskedPhone, resendAfter (s), phone (for the dev SMS link),
 *       title, recipient (e.g. '协管员手机'), confirmText, onConfirmed(result), onBack()
 */
export function codeStep(opts) {
  const {
    challengeId, maskedPhone, phone, title = '输入短信验证码', recipient = '', confirmText = '确认',
    onConfirmed, onBack,
  } = opts;
  const code = field({
    name: 'code', label: '验证码',
    attrs: { inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 6, pattern: '[0-9]*', placeholder: '6位数字' },
  });
  const status = h('div', { class: 'code-status', role: 'status', 'aria-live': 'polite' });
  const general = h('div', { class: 'form-error', role: 'alert', hidden: true });
  const confirmBtn = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, confirmText);
  const resendBtn = button('重新发送', { class: 'btn btn-link resend' });
  const devLink = h('a', {
    class: 'dev-sms-link', href: phone ? `/dev/sms?phone=${encodeURIComponent(phone)}` : '/dev/sms',
    target: '_blank', rel: 'noopener', hidden: true,
  }, '查看短信(演示)');
  // data-checked: the answer is in (tests and assistive tools need not guess when)
  devSmsAvailable().then((ok) => { devLink.hidden = !ok; devLink.dataset.checked = ''; });

  let timer = null;
  let left = 0;
  let mounted = false;
  function tick() {
    if (resendBtn.isConnected) mounted = true;
    else if (mounted) { clearInterval(timer); timer = null; return; } // the step is gone
    if (left > 0) {
      resendBtn.disabled = true;
      resendBtn.textContent = `重新发送 (${left}s)`;
      left -= 1;
    } else {
      resendBtn.disabled = false;
      resendBtn.textContent = '重新发送';
      if (status.dataset.wait) { status.textContent = ''; delete status.dataset.wait; } // the wait is over
      clearInterval(timer);
      timer = null;
    }
  }
  function countdown(seconds) {
    left = Math.max(0, Math.ceil(seconds));
    if (timer) clearInterval(timer);
    timer = setInterval(tick, 1000);
    tick();
  }
  countdown(opts.resendAfter ?? 60);

  function setGeneral(msg) {
    general.textContent = msg || '';
    general.hidden = !msg;
  }

  const form = h('form', { class: 'card code-step', novalidate: true },
    h('h2', {}, title),
    h('p', { class: 'code-sent-to' }, `验证码已发送至 ${recipient}${maskedPhone || ''}`),
    code.wrap,
    general,
    confirmBtn,
    h('div', { class: 'code-actions' }, resendBtn, devLink,
      onBack ? button('返回修改', { class: 'btn btn-link', onclick: () => onBack() }) : null),
    status);

  code.input.addEventListener('input', () => {
    code.input.value = code.input.value.replace(/[^0-9]/g, '').slice(0, 6);
    code.setError('');
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    setGeneral('');
    const reason = checkCode(code.value);
    if (reason) { code.setError(reasonText('code', reason)); code.input.focus(); return; }
    code.setError('');
    await busy(confirmBtn, '验证中…', async () => {
      try {
        const result = await api.post(`/api/challenges/${encodeURIComponent(challengeId)}/confirm`, { code: code.value.trim() }, { auth: false });
        if (timer) clearInterval(timer);
        status.textContent = '验证成功';
        await onConfirmed(result);
      } catch (err) {
        if (err.code === 'wrong_code' || err.code === 'code_expired' || err.field === 'code') {
          code.setError(errorText(err));
          code.input.focus();
        } else if (err.code === 'identity_rejected') {
          setGeneral(identityText(err.details?.reason));
        } else {
          setGeneral(errorText(err));
        }
        if (err.code === 'too_many_attempts' || err.code === 'identity_rejected') {
          confirmBtn.hidden = true;
          resendBtn.hidden = true;
        }
      }
    });
  });

  resendBtn.addEventListener('click', async () => {
    setGeneral('');
    status.textContent = '';
    try {
      resendBtn.disabled = true;
      resendBtn.textContent = '发送中…';
      const c = await api.post(`/api/challenges/${encodeURIComponent(challengeId)}/resend`, {}, { auth: false });
      status.textContent = `新的验证码已发送至 ${c.masked_phone || maskedPhone}`;
      countdown(c.resend_after || 60);
    } catch (err) {
      if (err.code === 'rate_limited' && err.details?.retry_after) {
        status.textContent = `请 ${err.details.retry_after} 秒后再重新发送`;
        status.dataset.wait = '1';
        countdown(err.details.retry_after);
      } else {
        setGeneral(errorText(err));
        countdown(0);
      }
    }
  });

  setTimeout(() => code.input.focus(), 0);
  return form;
}
