// 演示短信箱 (dev/demo only): the messages the dev SMS outbox holds, newest first.

import { api } from '../api.js';
import { errorText } from '../errors.js';
import { add, clear, field, fmtTime, h, notice, setTitle } from '../ui.js';
import { checkPhone, cleanPhone } from '../validate.js';

export default function devsms(root) {
  setTitle('演示短信箱');
  root.dataset.page = 'devsms';
  const params = new URLSearchParams(location.search);
  const phone = field({ name: 'phone', label: '按手机号筛选', kind: 'tel', value: params.get('phone') || '', attrs: { inputmode: 'numeric', placeholder: '全部' } });
  const list = h('div', { class: 'sms-list', 'aria-live': 'polite' });
  const stamp = h('p', { class: 'muted small refresh-stamp' });
  const form = h('form', { class: 'card', novalidate: true },
    h('h1', {}, '演示短信箱'),
    h('p', { class: 'muted' }, '演示环境不真正发送短信，验证码等短信保存在这里。每 3 秒自动刷新。'),
    phone.wrap,
    h('div', { class: 'btn-row' }, h('button', { type: 'submit', class: 'btn btn-primary' }, '查看'),
      h('button', { type: 'button', class: 'btn', onclick: () => { phone.value = ''; phone.setError(''); load(); } }, '全部')),
    stamp);
  add(root, form, list);

  let timer = null;
  let stopped = false;
  let lastKey = '';

  async function load() {
    const p = cleanPhone(phone.value);
    if (p && checkPhone(p)) { phone.setError('请输入11位中国大陆手机号码'); return; }
    phone.setError('');
    const url = p ? `/api/dev/sms?phone=${encodeURIComponent(p)}` : '/api/dev/sms';
    try {
      const r = await api.get(url, { auth: false });
      if (stopped) return;
      const items = r.items || [];
      const key = items.map((m) => m.id).join(',');
      if (key !== lastKey) {
        lastKey = key;
        clear(list);
        if (!items.length) add(list, h('p', { class: 'muted empty' }, '暂无短信。'));
        for (const m of items) {
          const code = /(?:^|\D)(\d{6})(?:\D|$)/.exec(m.text || '');
          add(list, h('article', { class: 'card sms', dataset: { id: m.id } },
            h('div', { class: 'meta' }, h('span', { class: 'sms-to' }, m.masked_phone), h('time', { datetime: m.sent_at }, fmtTime(m.sent_at))),
            code ? h('div', { class: 'sms-code', 'aria-label': '验证码' }, code[1]) : null,
            h('p', { class: 'sms-text' }, m.text)));
        }
      }
      stamp.textContent = `更新于 ${fmtTime(new Date().toISOString())}`;
    } catch (err) {
      if (stopped) return;
      clear(list);
      lastKey = '';
      if (err.status === 404) {
        add(list, notice('演示短信箱未开启（生产环境不提供）。验证码会以真实短信发送到您的手机。', 'muted'));
        if (timer) { clearInterval(timer); timer = null; }
      } else add(list, notice(errorText(err), 'error'));
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = cleanPhone(phone.value);
    history.replaceState({}, '', p ? `/dev/sms?phone=${encodeURIComponent(p)}` : '/dev/sms');
    lastKey = '';
    load();
  });
  load();
  timer = setInterval(load, 3000);
  return () => { stopped = true; if (timer) clearInterval(timer); };
}
