// API errors → Chinese messages, and which form field they belong to.

const REASONS = {
  required: '请填写此项',
  too_long: '内容过长，请精简',
  bad_format: '格式不正确',
  bad_check_digit: '证件号码校验位不正确，请核对号码',
  bad_birth_date: '证件号码中的出生日期无效，请核对号码',
  not_mainland_mobile: '请输入11位中国大陆手机号码',
  unknown_id_type: '请选择证件类型',
  outdated: '知情同意书已更新，请重新阅读并勾选',
};

// field-specific wording, by the form field's own name (prefixes like admin_ removed)
const FIELD_REASONS = {
  phone: { bad_format: '手机号只能包含数字' },
  name: { bad_format: '姓名只能包含汉字、字母、空格和“·”', too_long: '姓名最多30个字' },
  org_name: { too_long: '机构名称最多60个字', bad_format: '机构名称含有不允许的字符' },
  org_address: { too_long: '机构地址最多120个字', bad_format: '机构地址含有不允许的字符' },
  consent: { required: '请阅读并勾选同意后再加入' },
  code: { required: '请输入验证码', bad_format: '验证码为6位数字' },
  reason: { required: '请填写移除原因', too_long: '原因最多200个字' },
  id_type: { required: '请选择证件类型' },
};

const ID_FORMAT = {
  resident_id: '居民身份证号码为18位，最后一位可能是X',
  passport: '护照号码为5至17位字母或数字',
  hk_macao_permit: '港澳通行证号码为H或M加8位或10位数字',
  taiwan_permit: '台湾居民来往大陆通行证号码为8位或10位数字',
};

export function baseField(field) {
  return String(field || '').replace(/^admin_/, '');
}

/** The message for one field's reason code. */
export function reasonText(field, reason, idType) {
  const base = baseField(field);
  if (base === 'id_number' && (reason === 'bad_format' || reason === 'too_long')) {
    return ID_FORMAT[idType] || REASONS.bad_format;
  }
  return FIELD_REASONS[base]?.[reason] || REASONS[reason] || '填写有误，请检查';
}

const IDENTITY = {
  phone_mismatch: '该手机号不是健康宝中此证件登记的手机号，请使用登记的手机号',
  name_mismatch: '姓名与健康宝中此证件的记录不一致',
  not_found: '健康宝中没有此证件号码的记录，请核对证件类型和号码',
  health_kit_unavailable: '暂时无法连接健康宝核验身份，请稍后再试',
  rate_limited: '今天发送到该手机号的验证码已达上限，请明天再试',
  address_rate_limited: '当前网络今天申请的验证码过多，请明天再试，或换用手机流量后重试',
  too_many_attempts: '验证码错误次数过多，请重新开始',
  expired: '验证码已过期，请重新开始',
  identity_mismatch: '姓名、证件号码和手机号与健康宝登记的信息不一致，请核对后再试',
  already_member: '您已经是该团体簿的成员，无需重复加入',
  join_in_progress: '此证件的加入申请正在等待短信验证：请先完成验证，或几分钟后再试',
  superseded: '您已重新提交过，此验证码已失效，请使用最新一条短信中的验证码',
};

// which field a Health Kit rejection points at
export const IDENTITY_FIELD = { phone_mismatch: 'phone', name_mismatch: 'name', not_found: 'id_number' };

const CONFLICT = {
  already_member: '您已经是该团体簿的成员，无需重复加入',
  ledger_full: '该团体簿成员已满，无法加入',
  ledger_closed: '该团体簿已关闭，不再接受加入',
  join_in_progress: '此证件的加入申请正在等待短信验证：请先完成验证，或几分钟后再试',
  join_ended: '此次加入未完成（已重新提交，或团体簿已关闭），请重新扫码加入',
};

export function identityText(reason) {
  return IDENTITY[reason] || '身份核验未通过，请核对姓名、证件号码和手机号';
}

export function seconds(n) {
  const s = Math.max(1, Math.ceil(Number(n) || 0));
  return s >= 120 ? `${Math.ceil(s / 60)} 分钟` : `${s} 秒`;
}

/** A Chinese sentence for any ApiError (or other exception). */
export function errorText(err) {
  const d = err?.details || {};
  switch (err?.code) {
    case 'identity_rejected': return identityText(d.reason);
    case 'wrong_code': {
      const left = d.attempts_left;
      return left != null ? `验证码不正确，还可以再试 ${left} 次` : '验证码不正确';
    }
    case 'code_expired': return '验证码已过期，请重新获取';
    case 'too_many_attempts': return '验证码错误次数过多，此验证已失效，请重新开始';
    case 'challenge_failed': return '验证失败，请重新开始';
    case 'rate_limited':
      return d.retry_after ? `操作太频繁，请 ${seconds(d.retry_after)}后再试` : '操作太频繁或已达今日上限，请稍后再试';
    case 'invalid_input': return '填写的信息有误，请检查标出的项目';
    case 'not_found': return '未找到相关内容，可能已被删除或链接已失效';
    case 'conflict':
      if (CONFLICT[d.reason]) return CONFLICT[d.reason];
      if (err.field === 'code') return '该验证码已使用过，请重新开始';
      return '当前状态下无法进行此操作，请刷新后再试';
    case 'ledger_closed': return '该团体簿已关闭，成员数据已销毁';
    case 'unauthenticated': return '登录已过期，请重新登录';
    case 'forbidden': return '您没有权限进行此操作';
    case 'sms_unavailable': return '短信暂时无法发送，请稍后再试';
    case 'unavailable': return '服务暂时不可用，请稍后再试';
    case 'network': return '网络连接失败，请检查网络后重试';
    default: return '系统繁忙，请稍后再试';
  }
}

/**
 * Per-field messages for an error: {field: message}. ``fields`` lists the form's
 * field names (API names); an error about another field is returned under '' (general).
 */
export function fieldErrors(err, { fields = [], prefix = '', idType } = {}) {
  const out = {};
  const known = (f) => fields.includes(f);
  const d = err?.details || {};
  if (err?.code === 'invalid_input' && (d.reasons || d.fields)) {
    const reasons = d.reasons || Object.fromEntries(Object.keys(d.fields).map((k) => [k, 'bad_format']));
    for (const [f, reason] of Object.entries(reasons)) {
      const text = reasonText(f, reason, idType);
      if (known(f)) out[f] = text;
      else out[''] = text;
    }
    return out;
  }
  if (err?.code === 'identity_rejected') {
    const f = err.field || (IDENTITY_FIELD[d.reason] ? prefix + IDENTITY_FIELD[d.reason] : null);
    if (f && known(f)) out[f] = identityText(d.reason);
    else out[''] = identityText(d.reason);
    return out;
  }
  if (err?.field && known(err.field)) out[err.field] = errorText(err);
  else out[''] = errorText(err);
  return out;
}
