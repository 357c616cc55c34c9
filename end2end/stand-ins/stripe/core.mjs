// Plumbing shared by the stand-in's modules: Stripe-shaped errors, form decoding, parameter
// readers, lists, ids, calendar arithmetic and the state objects keep out of their JSON.

import { randomBytes } from 'node:crypto';

// Where the stand-in serves its own pages (checkout, hosted invoices); set once listening.
export const site = { origin: '' };

export class StripeError extends Error {
  constructor(status, type, message, { param, code, decline_code } = {}) {
    super(message);
    Object.assign(this, { status, type, param, code, decline_code });
  }

  get body() {
    const { type, message, param, code, decline_code } = this;
    return { error: { type, message, ...(param && { param }), ...(code && { code }), ...(decline_code && { decline_code }) } };
  }
}
export const invalid = (message, param, code) => new StripeError(400, 'invalid_request_error', message, { param, code });
export const required = (param) => invalid(`Missing required param: ${param}.`, param, 'parameter_missing');
// An id in the path that doesn't exist is a 404; one in the parameters is a 400 naming the param.
export const notFound = (kind, id) => new StripeError(404, 'invalid_request_error', `No such ${kind}: '${id}'`, { param: 'id', code: 'resource_missing' });
export const noSuch = (kind, id, param) => invalid(`No such ${kind}: '${id}'`, param, 'resource_missing');
export const cardError = (message, code, decline_code) => new StripeError(402, 'card_error', message, { code, decline_code });

// State of our own on an object (retry schedules, card behaviour, secrets): a symbol key, so
// JSON, structuredClone and Object.keys never see it and the object keeps Stripe's exact shape.
const HIDDEN = Symbol('stand-in state');
export const hidden = (object) => (object[HIDDEN] ??= {});

export const newId = (prefix, bytes = 12) => `${prefix}_${randomBytes(bytes).toString('base64url').replace(/[-_]/g, 'x')}`;
export const clone = (value) => structuredClone(value);

// `a[b][0][c]=v` and `a[]=v` into nested objects and arrays, as Stripe reads them.
export function decodeForm(text) {
  const root = {};
  const decode = (s) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch {
      throw invalid(`Invalid URL encoding: ${s}`);
    }
  };
  for (const pair of text.split('&').filter(Boolean)) {
    const at = pair.indexOf('=');
    const key = decode(at < 0 ? pair : pair.slice(0, at));
    const value = at < 0 ? '' : decode(pair.slice(at + 1));
    const path = key.match(/^[^[]+|\[[^\]]*\]/g)?.map((part) => part.replace(/^\[|\]$/g, '')) ?? [key];
    if (path.some((part) => ['__proto__', 'constructor', 'prototype'].includes(part))) throw invalid(`Invalid parameter: ${key}`, key);
    let node = root;
    path.forEach((part, i) => {
      const last = i === path.length - 1;
      const nextIsIndex = !last && (path[i + 1] === '' || /^\d+$/.test(path[i + 1]));
      if (part === '') {
        if (!Array.isArray(node)) throw invalid(`Invalid array parameter: ${key}`, key);
        if (last) node.push(value);
        else {
          node.push(nextIsIndex ? [] : {});
          node = node[node.length - 1];
        }
        return;
      }
      if (typeof node !== 'object' || node === null) throw invalid(`Invalid parameter: ${key}`, key);
      if (last) node[part] = value;
      else {
        node[part] ??= nextIsIndex ? [] : {};
        node = node[part];
      }
    });
  }
  return root;
}

// JSON bodies (the stand-in's own controls) are read like forms: every leaf a string.
export function stringLeaves(value) {
  if (Array.isArray(value)) return value.map(stringLeaves);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, stringLeaves(v)]));
  return value === null ? '' : String(value);
}

// Arrays arrive as `a[]=x` or `a[0]=x`; a sparse or single value is normalised to a list.
export const array = (value) => (value === undefined || value === '' ? [] : Array.isArray(value) ? value.filter((x) => x !== undefined) : typeof value === 'object' ? Object.values(value) : [value]);

export function int(value, param, { min } = {}) {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(String(value))) throw invalid(`Invalid integer: ${value}`, param);
  const n = Number.parseInt(value, 10);
  if (min !== undefined && n < min) throw invalid(`Invalid ${param}: must be at least ${min}`, param);
  return n;
}
export function bool(value, param) {
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw invalid(`Invalid boolean: ${value}`, param);
  return value === 'true';
}
export function oneOf(value, allowed, param) {
  if (value === undefined) return undefined;
  if (!allowed.includes(value)) throw invalid(`Invalid ${param}: must be one of ${allowed.join(', ')}`, param);
  return value;
}
export function metadata(given, current = {}) {
  if (given === undefined) return current;
  if (given === '') return {};
  if (typeof given !== 'object' || Array.isArray(given)) throw invalid('Invalid metadata: must be a hash of keys and values', 'metadata');
  const merged = { ...current };
  for (const [k, v] of Object.entries(given)) {
    if (v === '') delete merged[k];
    else merged[k] = v;
  }
  return merged;
}

// Newest first (insertion order reversed), with Stripe's `limit` and `starting_after`.
export function list(items, p, url) {
  const limit = Math.min(int(p.limit, 'limit', { min: 1 }) ?? 10, 100);
  let data = [...items].reverse();
  if (p.starting_after) data = data.slice(data.findIndex((x) => x.id === p.starting_after) + 1);
  return { object: 'list', data: data.slice(0, limit), has_more: data.length > limit, url };
}

// --- Time: Unix seconds; calendar intervals in UTC, months clamped to their last day.

export const HOUR = 3600;
export const DAY = 86400;
export const wallNow = () => Math.floor(Date.now() / 1000);

export function addInterval(ts, interval, count) {
  if (interval === 'day') return ts + count * DAY;
  if (interval === 'week') return ts + count * 7 * DAY;
  const d = new Date(ts * 1000);
  const months = d.getUTCMonth() + (interval === 'year' ? 12 * count : count);
  const year = d.getUTCFullYear() + Math.floor(months / 12);
  const month = ((months % 12) + 12) % 12;
  const day = Math.min(d.getUTCDate(), new Date(Date.UTC(year, month + 1, 0)).getUTCDate());
  return Date.UTC(year, month, day, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()) / 1000;
}

// The first period boundary after `t` counted from the anchor (so Jan 31 → Feb 28 → Mar 31).
export function periodEndAfter(anchor, { interval, interval_count }, t) {
  let k = 1;
  let end = addInterval(anchor, interval, interval_count);
  while (end <= t) end = addInterval(anchor, interval, interval_count * ++k);
  return end;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export function formatDate(ts) {
  const d = new Date(ts * 1000);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
}

// Cents (possibly fractional, as a decimal string) as people read them: $29.00, $0.0005.
export function money(cents, currency) {
  const units = (Number(cents) / 100).toFixed(6).replace(/(\.\d\d\d*?)0+$/, '$1');
  const [whole, fraction] = units.replace('-', '').split('.');
  const text = `${whole.replace(/\B(?=(\d{3})+$)/g, ',')}.${fraction}`;
  const sign = Number(cents) < 0 ? '-' : '';
  return currency === 'usd' ? `${sign}$${text}` : `${sign}${text} ${currency.toUpperCase()}`;
}
