// Client-side checks mirroring shared/validation.py, so a person sees a mistake at once.
// Each returns a reason code (as the API would) or '' when the value is fine.
// The server checks again; its answer wins.

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = '10X98765432';

export function residentIdCheckDigit(first17) {
  let total = 0;
  for (let i = 0; i < 17; i += 1) total += Number(first17[i]) * WEIGHTS[i];
  return CHECK[total % 11];
}

// a number as people type or paste it: full-width digits and letters (a Chinese
// keyboard's) as ASCII, and no spaces (shared/validation.py's _compact)
export function compactNumber(raw) {
  return String(raw || '').normalize('NFKC').replace(/\s+/g, '');
}

export function checkResidentId(raw) {
  const v = compactNumber(raw).toUpperCase();
  if (!v) return 'required';
  if (v.length > 18) return 'too_long';
  if (!/^[0-9]{17}[0-9X]$/.test(v)) return 'bad_format';
  const y = Number(v.slice(6, 10));
  const m = Number(v.slice(10, 12));
  const d = Number(v.slice(12, 14));
  const born = new Date(y, m - 1, d);
  if (born.getFullYear() !== y || born.getMonth() !== m - 1 || born.getDate() !== d || y < 1900 || born > new Date()) {
    return 'bad_birth_date';
  }
  if (residentIdCheckDigit(v.slice(0, 17)) !== v[17]) return 'bad_check_digit';
  return '';
}

export function checkIdNumber(idType, raw) {
  if (!idType) return 'unknown_id_type';
  if (idType === 'resident_id') return checkResidentId(raw);
  const v = compactNumber(raw).toUpperCase();
  if (!v) return 'required';
  if (idType === 'passport') {
    if (v.length > 17) return 'too_long';
    return /^[A-Z0-9]{5,17}$/.test(v) ? '' : 'bad_format';
  }
  if (idType === 'hk_macao_permit') return /^[HM][0-9]{8}([0-9]{2})?$/.test(v) ? '' : 'bad_format';
  if (idType === 'taiwan_permit') return /^[0-9]{8}([0-9]{2})?$/.test(v) ? '' : 'bad_format';
  return 'unknown_id_type';
}

export function cleanPhone(raw) {
  return String(raw || '').normalize('NFKC').replace(/[\s-]+/g, '');
}

export function checkPhone(raw) {
  const v = cleanPhone(raw);
  if (!v) return 'required';
  if (!/^\+?[0-9]+$/.test(v)) return 'bad_format';
  return /^(\+?86)?1[3-9][0-9]{9}$/.test(v) ? '' : 'not_mainland_mobile';
}

export function checkName(raw) {
  const v = String(raw || '').trim().replace(/\s+/g, ' ');
  if (!v) return 'required';
  if ([...v].length > 30) return 'too_long';
  if (/[0-9０-９]/.test(v)) return 'bad_format';
  if (/[<>{}[\]\\/@#$%^&*=+|~`!?;:"，。、；：？！]/.test(v)) return 'bad_format';
  return '';
}

export function checkText(raw, max) {
  const v = String(raw || '').trim();
  if (!v) return 'required';
  return [...v].length > max ? 'too_long' : '';
}

export function checkCode(raw) {
  const v = String(raw || '').trim();
  if (!v) return 'required';
  return /^[0-9]{6}$/.test(v) ? '' : 'bad_format';
}
