// The person fields every form asks for (name, document type and number, phone),
// with inline validation in Chinese next to each field.

import { field, ID_TYPES } from './ui.js';
import { reasonText } from './errors.js';
import { checkIdNumber, checkName, checkPhone, checkText, cleanPhone, compactNumber } from './validate.js';

export function personFields(prefix = '', labels = {}) {
  return [
    field({ name: `${prefix}name`, label: labels.name || '姓名', attrs: { autocomplete: 'name', maxlength: 30 }, required: true }),
    field({ name: `${prefix}id_type`, label: '证件类型', kind: 'select', options: ID_TYPES, value: 'resident_id' }),
    field({
      name: `${prefix}id_number`, label: labels.id_number || '证件号码',
      attrs: { autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', maxlength: 24 }, required: true,
    }),
    field({
      name: `${prefix}phone`, label: labels.phone || '手机号', kind: 'tel',
      hint: labels.phoneHint || '须为健康宝中登记的手机号，用于接收验证码',
      attrs: { autocomplete: 'tel', inputmode: 'numeric', maxlength: 16 }, required: true,
    }),
  ];
}

/** Reason code per field for the person fields (and any text fields given in ``texts``). */
export function checkPerson(values, prefix = '', texts = {}) {
  const idType = values[`${prefix}id_type`];
  const reasons = {};
  for (const [name, max] of Object.entries(texts)) reasons[name] = checkText(values[name], max);
  reasons[`${prefix}name`] = checkName(values[`${prefix}name`]);
  reasons[`${prefix}id_type`] = idType ? '' : 'unknown_id_type';
  reasons[`${prefix}id_number`] = checkIdNumber(idType, values[`${prefix}id_number`]);
  reasons[`${prefix}phone`] = checkPhone(values[`${prefix}phone`]);
  return reasons;
}

/** Validate the form; show each error next to its field; true when all fine. */
export function validateForm(form, prefix = '', texts = {}) {
  const values = form.values();
  const reasons = checkPerson(values, prefix, texts);
  const errors = {};
  for (const [name, reason] of Object.entries(reasons)) {
    if (reason && form.fields[name]) errors[name] = reasonText(name, reason, values[`${prefix}id_type`]);
  }
  form.clearErrors();
  form.showErrors(errors);
  return Object.keys(errors).length === 0;
}

/** Check a field when the person leaves it, clear its error while they type. */
export function liveValidation(form, prefix = '', texts = {}) {
  for (const f of Object.values(form.fields)) {
    f.input.addEventListener('input', () => {
      if (f.wrap.classList.contains('has-error')) f.setError('');
      f.localError = false;
    });
    f.input.addEventListener('blur', () => {
      // a little later: showing the message moves what is below it, and a tap on the
      // submit button that caused this blur must still land on the button
      setTimeout(() => {
        if (!f.input.isConnected || !f.input.value.trim()) return; // empty: only on submit
        const values = form.values();
        const reason = checkPerson(values, prefix, texts)[f.name];
        if (reason) {
          f.setError(reasonText(f.name, reason, values[`${prefix}id_type`]));
          f.localError = true;
        } else if (f.localError) {
          // clear only what this check put there: an answer from the server (e.g. the
          // Health Kit does not know this phone) stays until the value is edited
          f.setError('');
          f.localError = false;
        }
      }, 250);
    });
  }
  const type = form.fields[`${prefix}id_type`];
  const number = form.fields[`${prefix}id_number`];
  if (type && number) {
    type.input.addEventListener('change', () => {
      // room for the spaces of a number pasted in groups (they are dropped, as on the server)
      number.input.maxLength = ({ resident_id: 18, passport: 17, hk_macao_permit: 11, taiwan_permit: 10 }[type.value] || 18) + 6;
      if (number.input.value.trim()) number.input.dispatchEvent(new Event('blur'));
    });
  }
}

/** The person part of a request body (phone and ID without spaces, full-width as ASCII, ID uppercased). */
export function personBody(values, prefix = '') {
  return {
    [`${prefix}name`]: values[`${prefix}name`],
    [`${prefix}id_type`]: values[`${prefix}id_type`],
    [`${prefix}id_number`]: compactNumber(values[`${prefix}id_number`]).toUpperCase(),
    [`${prefix}phone`]: cleanPhone(values[`${prefix}phone`]),
  };
}
