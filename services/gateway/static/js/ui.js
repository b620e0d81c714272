// Small DOM helpers: elements, form fields with inline errors, busy buttons, dialogs.
// Text always goes in as text (never as HTML), so nothing typed or returned can inject markup.

import { fieldErrors, errorText } from './errors.js';

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'disabled') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let uid = 0;
export function nextId(prefix = 'f') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/**
 * A labelled form field with an error slot next to it.
 * kind: text | tel | select | checkbox | textarea | date | number | search
 */
export function field({ name, label, kind = 'text', options = [], hint, value, required, attrs = {} }) {
  const id = nextId(name);
  const errId = `${id}-err`;
  const hintId = hint ? `${id}-hint` : null;
  let input;
  const common = { id, name, 'aria-describedby': [hintId, errId].filter(Boolean).join(' '), required, ...attrs };
  if (kind === 'select') {
    input = h('select', common, options.map(([v, t]) => h('option', { value: v }, t)));
    if (value !== undefined) input.value = value;
  } else if (kind === 'textarea') {
    input = h('textarea', { ...common, rows: attrs.rows || 3 });
    if (value) input.value = value;
  } else if (kind === 'checkbox') {
    input = h('input', { ...common, type: 'checkbox', checked: !!value });
  } else {
    input = h('input', { ...common, type: kind, value: value ?? '' });
  }
  const error = h('div', { class: 'field-error', id: errId, role: 'alert', 'aria-live': 'polite', hidden: true });
  const wrap = kind === 'checkbox'
    ? h('div', { class: 'field field-check', dataset: { field: name } },
      h('label', { for: id }, input, h('span', {}, label)), hintId && h('div', { class: 'hint', id: hintId }, hint), error)
    : h('div', { class: 'field', dataset: { field: name } },
      h('label', { for: id }, label), input, hintId && h('div', { class: 'hint', id: hintId }, hint), error);
  const f = {
    name, wrap, input, error,
    get value() { return kind === 'checkbox' ? input.checked : input.value; },
    set value(v) { if (kind === 'checkbox') input.checked = !!v; else input.value = v; },
    setError(msg) {
      error.textContent = msg || '';
      error.hidden = !msg;
      wrap.classList.toggle('has-error', !!msg);
      if (msg) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    },
  };
  return f;
}

/** A set of fields, a general error slot and helpers to show API errors. */
export class Form {
  constructor(fields, { prefix = '' } = {}) {
    this.fields = {};
    for (const f of fields) this.fields[f.name] = f;
    this.prefix = prefix;
    this.general = h('div', { class: 'form-error', role: 'alert', hidden: true });
  }
  values() {
    const out = {};
    for (const [k, f] of Object.entries(this.fields)) out[k] = typeof f.value === 'string' ? f.value.trim() : f.value;
    return out;
  }
  clearErrors() {
    for (const f of Object.values(this.fields)) f.setError('');
    this.setGeneral('');
  }
  setGeneral(msg) {
    this.general.textContent = msg || '';
    this.general.hidden = !msg;
  }
  /** Show {field: message}; returns true if any. Focuses the first bad field. */
  showErrors(errors) {
    let first = null;
    for (const [k, msg] of Object.entries(errors)) {
      if (k === '') { this.setGeneral(msg); continue; }
      const f = this.fields[k];
      if (!f) { this.setGeneral(msg); continue; }
      f.setError(msg);
      first = first || f;
    }
    if (first) first.input.focus({ preventScroll: false });
    return Object.keys(errors).length > 0;
  }
  /** Map an ApiError onto the fields (typed values stay as they are). */
  showApiError(err) {
    const idType = this.fields[`${this.prefix}id_type`]?.value;
    this.showErrors(fieldErrors(err, { fields: Object.keys(this.fields), prefix: this.prefix, idType }));
  }
}

/** Disable a button and show progress while ``fn`` runs. */
export async function busy(btn, text, fn) {
  const old = btn.textContent;
  btn.disabled = true;
  btn.setAttribute('aria-busy', 'true');
  btn.classList.add('is-busy');
  btn.textContent = text || '请稍候…';
  try {
    return await fn();
  } finally {
    btn.disabled = false;
    btn.removeAttribute('aria-busy');
    btn.classList.remove('is-busy');
    btn.textContent = old;
  }
}

export function button(text, attrs = {}) {
  return h('button', { type: 'button', class: 'btn', ...attrs }, text);
}

export function notice(text, kind = 'info') {
  return h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

export function errorNotice(err) {
  return notice(errorText(err), 'error');
}

/** "This part is not available yet" for an endpoint that answers 404. */
export function unavailableNotice(what) {
  return notice(`${what}功能暂未开放，敬请期待。`, 'muted');
}

/** A modal dialog; resolves to the value of the button pressed (or null). */
export function dialog({ title, body, actions = [['cancel', '取消'], ['ok', '确定', 'primary']], onOk }) {
  return new Promise((resolve) => {
    const d = h('dialog', { class: 'dialog', 'aria-labelledby': 'dlg-title' });
    const errorBox = h('div', { class: 'form-error', role: 'alert', hidden: true });
    const buttons = actions.map(([value, text, kind]) => {
      const b = button(text, { class: `btn ${kind ? `btn-${kind}` : ''}`, dataset: { value } });
      b.addEventListener('click', async () => {
        if (value !== 'cancel' && onOk) {
          errorBox.hidden = true;
          try {
            const ok = await busy(b, '请稍候…', () => onOk(value, errorBox));
            if (ok === false) return;
          } catch (err) {
            errorBox.textContent = errorText(err);
            errorBox.hidden = false;
            return;
          }
        }
        d.close(value);
      });
      return b;
    });
    append(d, [
      h('h2', { id: 'dlg-title', class: 'dialog-title' }, title),
      h('div', { class: 'dialog-body' }, body || ''),
      errorBox,
      h('div', { class: 'dialog-actions' }, buttons),
    ]);
    d.addEventListener('close', () => {
      const v = d.returnValue && d.returnValue !== 'cancel' ? d.returnValue : null;
      d.remove();
      resolve(v);
    });
    d.addEventListener('cancel', () => { d.returnValue = 'cancel'; });
    document.body.append(d);
    d.showModal();
  });
}

export function confirmDialog(title, text, okText = '确定', kind = 'primary') {
  return dialog({ title, body: h('p', {}, text), actions: [['cancel', '取消'], ['ok', okText, kind]] });
}

// -- formatting -----------------------------------------------------------------------

const pad = (n) => String(n).padStart(2, '0');

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fmtDate(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export const ID_TYPES = [
  ['resident_id', '居民身份证'],
  ['passport', '护照'],
  ['hk_macao_permit', '港澳居民来往内地通行证'],
  ['taiwan_permit', '台湾居民来往大陆通行证'],
];

export const CODE_STATUS = {
  green: '未见异常', yellow: '居家观察', red: '集中观察', unknown: '未知',
};
export const TEST_RESULT = {
  negative: '阴性', positive: '阳性', pending: '待出结果', none: '无记录',
};
export const VACCINATION = {
  booster: '完成加强免疫',
  primary: '完成基础免疫',
  incomplete: '未完成基础免疫',
  unsuitable: '不适宜接种',
  none_found: '未查询到接种信息',
};
// the test-age bands of the stats, the filter and its chip: each counts apart (h48 is
// 24–48 h, not everyone within 48 h), so the labels name the band
export const TEST_AGE = {
  h24: '24小时内', h48: '24–48小时', h72: '48–72小时', older: '超过72小时', none: '无核酸记录', pending: '待出结果',
};
export const ROLE = { owner: '所有者', admin: '管理员', co_admin: '管理员' };

export function testDays(n) {
  return n === null || n === undefined ? '—' : `${n}天`;
}

export function codeBadge(status, popup) {
  const s = CODE_STATUS[status] ? status : 'unknown';
  return h('span', { class: `code-badge code-${s}` }, CODE_STATUS[s], popup ? h('span', { class: 'popup-tag' }, '弹窗') : null);
}

export function setTitle(text) {
  document.title = text ? `${text} - 团体簿` : '团体簿';
}

/** Append children, skipping null/false (the native append would print "null"). */
export function add(el, ...children) {
  return append(el, children);
}

/** Replace an element's children. */
export function fill(el, ...children) {
  return append(clear(el), children);
}

/**
 * A list read from the server a page at a time: ``load(page)`` resolves to
 * {items, total, page_size} (newest first). Shows the true count ("共 N 条") and a
 * button for the next page while there is one. Resolves once the first page is shown
 * (rejects with its error). Entries that came in while reading push older ones to a
 * later page, so it may repeat one: each is shown once (by ``key``).
 */
export async function pagedList({ load, renderItem, key = (x) => x.id, cls = '', empty = '暂无记录。' }) {
  const ul = h('ul', { class: cls });
  const count = h('p', { class: 'muted small list-count' });
  const more = button('', { class: 'btn btn-link load-more' });
  const msg = h('div', { class: 'action-msg', role: 'status', 'aria-live': 'polite' });
  const seen = new Set();
  let page = 0;
  let left = 0;
  async function next() {
    const r = await load(page + 1);
    page += 1;
    const items = r.items || [];
    const total = r.total ?? items.length;
    for (const x of items) {
      const k = key(x);
      if (k !== undefined && k !== null && seen.has(k)) continue;
      seen.add(k);
      add(ul, renderItem(x));
    }
    count.textContent = `共 ${total} 条`;
    left = total - page * (r.page_size || items.length);
    more.hidden = !items.length || left <= 0;
  }
  more.addEventListener('click', async () => {
    msg.textContent = '';
    await busy(more, '加载中…', async () => {
      try { await next(); } catch (err) { msg.textContent = errorText(err); }
    });
    more.textContent = `查看更多（还有 ${left} 条）`;
  });
  await next();
  more.textContent = `查看更多（还有 ${left} 条）`;
  if (!seen.size) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'paged-list' }, count, ul, more, msg);
}
