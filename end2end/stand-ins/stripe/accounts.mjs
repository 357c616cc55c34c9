// One Stripe account per secret key, so test binaries running in parallel never see each other's
// objects, events, webhook endpoints or settings.

import { clone, notFound, noSuch, wallNow } from './core.mjs';

const KINDS = [
  'customer',
  'product',
  'price',
  'billing.meter',
  'test_helpers.test_clock',
  'payment_method',
  'setup_intent',
  'subscription',
  'subscription_schedule',
  'invoice',
  'invoiceitem',
  'checkout.session',
  'webhook_endpoint',
  'event',
];

class Account {
  constructor(key) {
    this.key = key;
    this.objects = new Map(KINDS.map((kind) => [kind, new Map()]));
    // Deleted customers, clocks and endpoints answer with Stripe's `{id, object, deleted}`.
    this.deleted = new Map();
    this.idempotency = new Map();
    // Meter events have no id: kept in order, with the identifiers seen (deduplicated for 24 h).
    this.meterEvents = [];
    this.meterIdentifiers = new Map();
    this.settings = { final_retry_action: 'cancel' };
    this.chaos = { duplicate: 0, reorder: false };
    this.deliveries = [];
    this.queues = new Map();
  }

  all(kind) {
    return [...this.objects.get(kind).values()];
  }

  put(object) {
    this.objects.get(object.object).set(object.id, object);
    return object;
  }

  remove(object) {
    this.objects.get(object.object).delete(object.id);
    const stub = { deleted: true, id: object.id, object: object.object };
    this.deleted.set(object.id, stub);
    return stub;
  }

  // An object named in the path (404 when absent).
  get(kind, id, label = kind) {
    const object = this.objects.get(kind).get(id);
    if (!object) throw notFound(label, id);
    return object;
  }

  // An object named by a parameter (400 naming the parameter when absent).
  ref(kind, id, param, label = kind) {
    const object = this.objects.get(kind).get(id);
    if (!object) throw noSuch(label, id, param);
    return object;
  }

  find(id) {
    for (const objects of this.objects.values()) if (objects.has(id)) return objects.get(id);
    return undefined;
  }

  // The test clock an object lives by: its own, or its customer's.
  clockOf(object) {
    let id = object.object === 'test_helpers.test_clock' ? object.id : object.test_clock;
    if (id === undefined && typeof object.customer === 'string') id = this.objects.get('customer').get(object.customer)?.test_clock;
    return id ? (this.objects.get('test_helpers.test_clock').get(id) ?? null) : null;
  }

  // "Now" for an object: its clock's frozen time, or the wall clock.
  now(object) {
    return this.clockOf(object)?.frozen_time ?? wallNow();
  }
}

const accounts = new Map();
export function accountFor(key) {
  if (!accounts.has(key)) accounts.set(key, new Account(key));
  return accounts.get(key);
}
export const allAccounts = () => accounts.values();

// Pages the stand-in serves without a key (checkout, hosted invoices) find their account by id.
export function owner(kind, id) {
  for (const account of accounts.values()) {
    const object = account.objects.get(kind).get(id);
    if (object) return [account, object];
  }
  return [];
}

// `expand[]=latest_invoice`, `expand[]=data.latest_invoice`, `expand[]=subscription.latest_invoice`:
// ids along the path become copies of their objects.
export function expand(account, body, paths) {
  if (!paths.length) return body;
  const out = clone(body);
  const walk = (node, [head, ...rest]) => {
    if (!node || typeof node !== 'object') return;
    if (node.object === 'list' && head === 'data') return node.data.forEach((item) => walk(item, rest));
    if (typeof node[head] === 'string') {
      const found = account.find(node[head]);
      if (found) node[head] = clone(found);
    }
    if (rest.length) walk(node[head], rest);
  };
  for (const path of paths) walk(out, String(path).split('.'));
  return out;
}
