import { getToken } from '../api.js';
import { add, h, setTitle } from '../ui.js';

export default function home(root) {
  setTitle('');
  root.dataset.page = 'home';
  const loggedIn = !!getToken();
  add(root, 
    h('section', { class: 'hero' },
      h('h1', {}, '团体簿'),
      h('p', { class: 'lead' }, '防疫健康信息团体簿：机构建簿、个人自愿加入，后台与健康宝比对，机构查看成员健康码、核酸天数和疫苗接种情况（除姓名外全部脱敏）。'),
      h('div', { class: 'btn-col' },
        h('a', { class: 'btn btn-primary btn-block', href: '/create' }, '创建团体簿'),
        h('a', { class: 'btn btn-block', href: loggedIn ? '/me' : '/login' }, loggedIn ? '我的' : '登录'))),
    h('section', { class: 'card' },
      h('h2', {}, '如何加入团体簿？'),
      h('p', {}, '请扫描机构提供的团体簿二维码。扫码后会显示机构名称和管理员，核对无误后再填写信息。')),
    h('section', { class: 'card' },
      h('h2', {}, '我们承诺'),
      h('ul', { class: 'promises' },
        h('li', {}, '只收集姓名、证件类型及号码、手机号'),
        h('li', {}, '仅用于与健康宝比对并向机构展示防疫信息'),
        h('li', {}, '加密存储、加密传输、脱敏展示'),
        h('li', {}, '可随时退出，退出后证件号、手机号和健康信息立即删除'),
        h('li', {}, '机构可随时关闭团体簿，成员数据随之销毁'))),
  );
}
