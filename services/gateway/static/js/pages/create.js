// 创建团体簿: the org's details and the admin's identity → SMS code → the ledger's QR.

import { api, request, setToken } from '../api.js';
import { codeStep, waitForChallenge } from '../code-step.js';
import { errorText } from '../errors.js';
import { liveValidation, personBody, personFields, validateForm } from '../person.js';
import { qrPanel } from '../qr.js';
import { add, busy, clear, field, fill, Form, h, notice, setTitle } from '../ui.js';

const TEXTS = { org_name: 60, org_address: 120 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export default function create(root) {
  setTitle('创建团体簿');
  root.dataset.page = 'create';
  let alive = true;

  const fields = [
    field({ name: 'org_name', label: '机构名称', attrs: { maxlength: 60, autocomplete: 'organization' }, required: true }),
    field({ name: 'org_address', label: '机构地址', attrs: { maxlength: 120, autocomplete: 'street-address' }, required: true }),
    ...personFields('admin_', { name: '管理员姓名', id_number: '管理员证件号码', phone: '管理员手机号' }),
  ];
  const form = new Form(fields, { prefix: 'admin_' });
  liveValidation(form, 'admin_', TEXTS);
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, '下一步：获取验证码');
  const formEl = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'create-title' },
    h('h1', { id: 'create-title' }, '创建团体簿'),
    h('p', { class: 'muted' }, '管理员须通过健康宝身份核验：姓名、证件号码和手机号须与健康宝登记一致，并完成短信验证。'),
    h('fieldset', {}, h('legend', {}, '机构信息'), fields[0].wrap, fields[1].wrap),
    h('fieldset', {}, h('legend', {}, '管理员（本人）'), fields.slice(2).map((f) => f.wrap)),
    form.general,
    submit);
  const stepBox = h('div', { class: 'step' });
  add(root, formEl, stepBox);

  function backToForm() {
    clear(stepBox);
    formEl.hidden = false;
  }

  function showCode(created, challenge, phone) {
    formEl.hidden = true;
    fill(stepBox, codeStep({
      challengeId: created.challenge_id,
      maskedPhone: challenge.masked_phone || created.masked_phone,
      resendAfter: challenge.resend_after ?? 60,
      phone,
      title: '输入短信验证码',
      confirmText: '确认创建',
      onBack: backToForm,
      onConfirmed: (result) => done(created, result),
    }));
  }

  async function done(created, result) {
    setToken(result.token);
    let ledger = result.ledger;
    const id = result.ledger_id || created.ledger_id;
    for (let i = 0; !ledger && alive && i < 20; i += 1) {
      try {
        const l = await api.get(`/api/ledgers/${encodeURIComponent(id)}`);
        if (l.status === 'active') ledger = l;
      } catch { /* still activating */ }
      if (!ledger) await sleep(1000);
    }
    if (!alive) return;
    if (!ledger) {
      fill(stepBox, notice('团体簿正在开通，请稍后在“我的”中查看。', 'info'), h('a', { class: 'btn', href: '/me' }, '去我的'));
      return;
    }
    fill(stepBox, 
      h('section', { class: 'card done' },
        h('h1', {}, '团体簿已创建'),
        h('p', {}, `“${ledger.org_name}”的团体簿已开通。把下面的二维码分享给成员，扫码即可加入。`),
        h('a', { class: 'btn btn-primary', href: `/ledger/${encodeURIComponent(ledger.ledger_id)}` }, '进入团体簿管理')),
      qrPanel(ledger, { rotate: false }),
    );
  }

  formEl.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!validateForm(form, 'admin_', TEXTS)) return;
    const v = form.values();
    const body = { org_name: v.org_name, org_address: v.org_address, ...personBody(v, 'admin_') };
    await busy(submit, '正在核验身份…', async () => {
      try {
        const { status, data } = await request('POST', '/api/ledgers', { body, auth: false });
        let challenge = data;
        if (status === 202 || data.status === 'pending') {
          form.setGeneral('');
          submit.textContent = '正在向健康宝核验…';
          challenge = await waitForChallenge(data.challenge_id);
        }
        if (alive) showCode(data, challenge, body.admin_phone);
      } catch (err) {
        if (err.code === 'network' || err.code === 'unavailable') form.setGeneral(errorText(err));
        else form.showApiError(err);
      }
    });
  });

  return () => { alive = false; };
}
