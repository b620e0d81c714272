// A ledger's join QR code: the image (fetched with the session, shown by object URL),
// "保存图片", the join link, a printable A4 poster and (for admins) rotation.

import { api, fetchBlob } from './api.js';
import { errorText } from './errors.js';
import { busy, button, confirmDialog, fill, h, nextId, notice } from './ui.js';

const urls = new Set();
function objectUrl(blob) {
  const u = URL.createObjectURL(blob);
  urls.add(u);
  return u;
}
export function revokeQrUrls() {
  for (const u of urls) URL.revokeObjectURL(u);
  urls.clear();
}

/**
 * The QR panel. ledger: {ledger_id, org_name, org_address}; rotate: show 轮换二维码.
 */
export function qrPanel(ledger, { rotate = false } = {}) {
  const id = encodeURIComponent(ledger.ledger_id);
  const img = h('img', { class: 'qr-img', alt: `${ledger.org_name} 团体簿二维码`, width: 240, height: 240 });
  const posterImg = h('img', { class: 'poster-qr', alt: '扫码加入团体簿' });
  const save = h('a', { class: 'btn', download: `团体簿二维码-${ledger.org_name}.png`, href: '#', 'aria-disabled': 'true' }, '保存图片');
  const linkId = nextId('join-link');
  const linkInput = h('input', { class: 'join-link', id: linkId, readonly: true, value: '' });
  const copyBtn = button('复制链接');
  const msg = h('div', { class: 'qr-msg', role: 'status', 'aria-live': 'polite' });
  const printBtn = button('打印海报', { class: 'btn btn-primary' });
  const posterToggle = button('预览海报', { class: 'btn' });
  const poster = posterView(ledger, posterImg);
  const rotateBtn = rotate ? button('轮换二维码', { class: 'btn btn-danger-outline' }) : null;

  async function load() {
    msg.textContent = '';
    try {
      const [{ blob }, link] = await Promise.all([
        fetchBlob(`/api/ledgers/${id}/qr.png`),
        api.get(`/api/ledgers/${id}/join-link`),
      ]);
      const u = objectUrl(blob);
      img.src = u;
      posterImg.src = u;
      save.href = u;
      save.removeAttribute('aria-disabled');
      linkInput.value = link.url || '';
      poster.querySelector('.poster-link').textContent = link.url || '';
    } catch (err) {
      msg.textContent = err.code === 'ledger_closed' ? '团体簿已关闭，二维码已失效。' : errorText(err);
    }
  }

  copyBtn.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(linkInput.value);
      msg.textContent = '链接已复制';
    } catch {
      linkInput.select();
      msg.textContent = '请长按链接手动复制';
    }
  });
  save.addEventListener('click', (e) => { if (save.getAttribute('aria-disabled')) e.preventDefault(); });
  posterToggle.addEventListener('click', () => {
    const show = poster.hidden;
    poster.hidden = !show;
    posterToggle.textContent = show ? '收起海报' : '预览海报';
  });
  printBtn.addEventListener('click', () => {
    poster.hidden = false;
    posterToggle.textContent = '收起海报';
    window.print();
  });
  rotateBtn?.addEventListener('click', async () => {
    const ok = await confirmDialog('轮换二维码', '轮换后，旧的二维码和链接立即失效，已打印或转发的二维码需要替换。已加入的成员不受影响。确定轮换吗？', '轮换', 'danger');
    if (!ok) return;
    await busy(rotateBtn, '轮换中…', async () => {
      try {
        await api.post(`/api/ledgers/${id}/qr/rotate`, {});
        await load();
        msg.textContent = '二维码已更新，旧二维码已失效';
      } catch (err) {
        msg.textContent = errorText(err);
      }
    });
  });

  const panel = h('section', { class: 'card qr-panel', 'aria-labelledby': 'qr-title' },
    h('h2', { id: 'qr-title', class: 'no-print' }, '加入二维码'),
    h('p', { class: 'muted no-print' }, '把二维码发到群里或打印张贴，成员扫码即可自愿加入。'),
    h('div', { class: 'qr-box no-print' }, img),
    h('div', { class: 'btn-row no-print' }, save, printBtn, posterToggle),
    h('div', { class: 'field no-print' }, h('label', { for: linkId }, '加入链接'), h('div', { class: 'input-row' }, linkInput, copyBtn)),
    rotateBtn ? h('div', { class: 'btn-row no-print' }, rotateBtn) : null,
    h('div', { class: 'no-print' }, msg),
    poster);
  load();
  return panel;
}

/** The A4 poster: org name, what joining means, the QR (10 cm when printed). */
export function posterView(ledger, qrImg) {
  return h('div', { class: 'poster', hidden: true, 'aria-label': '打印海报' },
    h('div', { class: 'poster-kicker' }, '防疫健康信息团体簿'),
    h('h1', { class: 'poster-org' }, ledger.org_name),
    ledger.org_address ? h('p', { class: 'poster-address' }, ledger.org_address) : null,
    h('p', { class: 'poster-cta' }, '请用微信或手机相机扫码，自愿加入本机构团体簿'),
    h('div', { class: 'poster-qr-box' }, qrImg),
    h('p', { class: 'poster-what' },
      '加入后，本机构管理员可以看到您的姓名，以及健康宝中的健康码状态、核酸检测天数和疫苗接种情况；',
      '证件号和手机号脱敏显示。数据仅用于本机构的防疫管理，加密存储；您可以随时在“我的”中退出，退出后证件号、手机号和健康信息立即删除。'),
    h('p', { class: 'poster-link' }, ''),
    h('p', { class: 'poster-foot' }, '扫码后请核对页面上的机构名称和管理员，确认无误再填写。'));
}

export function qrUnavailable(container, text) {
  fill(container, notice(text, 'muted'));
}
