// The member-list filters: their query parameters, labels and a readable summary.

import { CODE_STATUS, TEST_AGE, VACCINATION } from '../ui.js';

export const STATUS = { active: '在册', left: '已退出/移除', all: '全部' };
export const SORT = { joined_at: '加入时间', name: '姓名', test_days: '核酸天数' };
export const ORDER = { asc: '升序', desc: '降序' };
export const HEALTH_KEYS = ['abnormal', 'code_status', 'test_age', 'vaccination', 'no_test', 'test_older_than_hours'];
export const FILTER_KEYS = [...HEALTH_KEYS, 'q', 'status', 'joined_from', 'joined_to', 'sort', 'order'];

export function emptyFilters() {
  return {
    abnormal: false, code_status: '', test_age: '', vaccination: '', no_test: false, test_older_than_hours: '',
    q: '', status: 'active', joined_from: '', joined_to: '', sort: '', order: '',
  };
}

export function filtersFromSearch(search) {
  const p = new URLSearchParams(search);
  const f = emptyFilters();
  for (const k of FILTER_KEYS) {
    if (!p.has(k)) continue;
    f[k] = k === 'abnormal' || k === 'no_test' ? p.get(k) === 'true' : p.get(k);
  }
  return f;
}

/**
 * People who left have no health data: with a status other than 在册 the health filters
 * and the test-days sort are dropped (the API refuses them). True when any was.
 */
export function dropHealthFilters(f) {
  if ((f.status || 'active') === 'active') return false;
  let dropped = false;
  for (const k of HEALTH_KEYS) {
    if (f[k] && f[k] !== 'false') dropped = true;
    f[k] = k === 'abnormal' || k === 'no_test' ? false : '';
  }
  if (f.sort === 'test_days') {
    f.sort = '';
    f.order = '';
    dropped = true;
  }
  return dropped;
}

/** The query parameters the API takes (empty values dropped by api.query). */
export function filterParams(f) {
  const out = {};
  for (const k of FILTER_KEYS) {
    const v = f[k];
    if (v === '' || v === false || v == null) continue;
    if (k === 'status' && v === 'active') continue; // the API's default
    out[k] = v;
  }
  return out;
}

/** [key, text] per active filter, for chips and the access log. */
export function describeFilters(f) {
  const out = [];
  const yes = (v) => v === true || v === 'true';
  if (yes(f.abnormal)) out.push(['abnormal', '只看异常']);
  if (f.code_status) out.push(['code_status', `健康码：${CODE_STATUS[f.code_status] || f.code_status}`]);
  if (f.test_age) out.push(['test_age', `核酸：${TEST_AGE[f.test_age] || f.test_age}`]);
  if (yes(f.no_test)) out.push(['no_test', '无核酸记录']);
  if (f.test_older_than_hours) out.push(['test_older_than_hours', `核酸超过${f.test_older_than_hours}小时`]);
  if (f.vaccination) out.push(['vaccination', `疫苗：${VACCINATION[f.vaccination] || f.vaccination}`]);
  if (f.q) out.push(['q', `姓名含“${f.q}”`]);
  if (f.status && f.status !== 'active') out.push(['status', `状态：${STATUS[f.status] || f.status}`]);
  if (f.joined_from || f.joined_to) out.push(['joined', `加入日期：${f.joined_from || '…'} 至 ${f.joined_to || '…'}`]);
  if (f.sort) out.push(['sort', `按${SORT[f.sort] || f.sort}${f.order === 'desc' ? '降序' : '升序'}`]);
  return out;
}

/** Whether an item matches the filters we can check on the page (to notice a server that ignores them). */
export function matches(item, f) {
  if (f.abnormal && 'abnormal' in item && !item.abnormal) return false;
  if (f.code_status && item.code_status && item.code_status !== f.code_status) return false;
  if (f.vaccination && 'vaccination' in item && (item.vaccination || 'none_found') !== f.vaccination) return false;
  if (f.q && item.name && !item.name.includes(f.q)) return false;
  if ((f.status || 'active') === 'active' && item.status && item.status !== 'active') return false;
  if (f.status === 'left' && item.status === 'active') return false;
  return true;
}
