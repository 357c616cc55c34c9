// Subscriptions and their items: creation with or without a trial, updates with prorations, the
// status machine (trialing, active, past_due, unpaid, canceled, incomplete(_expired), paused),
// renewals, cancellation, invoice previews and `invoice.upcoming`.

import { amountFor, planOf, usage } from './catalog.mjs';
import { decline, paymentMethodFor } from './cards.mjs';
import {
  DAY,
  HOUR,
  array,
  bool,
  cardError,
  clone,
  formatDate,
  hidden,
  int,
  invalid,
  list,
  metadata,
  money,
  newId,
  notFound,
  oneOf,
  periodEndAfter,
  required,
} from './core.mjs';
import { buildInvoice, createInvoice, dropPending, finalize, pendingItem, pendingLines, stopCollecting, voidInvoice } from './invoices.mjs';
import { endSchedule, phaseItemsAt } from './schedules.mjs';
import { emit, emitUpdate } from './webhooks.mjs';

export const ENDED = ['canceled', 'incomplete_expired'];
const PRORATION_BEHAVIORS = ['create_prorations', 'always_invoice', 'none'];
const MAX_TRIAL = 730 * DAY;
const INCOMPLETE_EXPIRES_AFTER = 23 * HOUR;
const UPCOMING_BEFORE = 7 * DAY;
const TRIAL_WILL_END_BEFORE = 3 * DAY;

const periodStart = (sub) => sub.items.data[0].current_period_start;
export const periodEnd = (sub) => sub.items.data[0].current_period_end;
export const recurringOf = (sub) => sub.items.data[0].price.recurring;
const isMetered = (price) => price.recurring.usage_type === 'metered';
const productName = (account, price) => account.objects.get('product').get(price.product)?.name ?? price.product;
const sameInterval = (a, b) => a.interval === b.interval && a.interval_count === b.interval_count;
const customerOf = (account, sub) => account.objects.get('customer').get(sub.customer);

// --- Reading items: `items[n][price|quantity|id|deleted]`.

function priceParam(account, id, param) {
  const price = account.ref('price', id, param, 'price');
  if (!price.recurring) throw invalid(`The price ${price.id} is a one-time price; subscriptions need recurring prices.`, param);
  if (!price.active) throw invalid(`The price ${price.id} is not active.`, param);
  return price;
}

function quantityParam(price, given, param, fallback) {
  if (isMetered(price)) {
    if (given !== undefined && given !== '') throw invalid('Metered prices are billed by usage: leave out quantity.', param);
    return null;
  }
  return int(given, param, { min: 0 }) ?? fallback;
}

// All items of a subscription bill together: one interval, one currency, each price once.
function checkTogether(entries, param) {
  const first = entries[0].price;
  for (const { price } of entries) {
    if (!sameInterval(price.recurring, first.recurring)) throw invalid('All prices on a subscription must have the same recurring interval and interval_count.', param);
    if (price.currency !== first.currency) throw invalid('All prices on a subscription must have the same currency.', param);
  }
  const ids = entries.map((e) => e.price.id);
  if (new Set(ids).size !== ids.length) throw invalid('A price can appear only once on a subscription; change the quantity instead.', param);
}

function readNewItems(account, given, param) {
  const entries = array(given).map((item, i) => {
    if (!item?.price) throw required(`${param}[${i}][price]`);
    const price = priceParam(account, item.price, `${param}[${i}][price]`);
    return { id: newId('si', 9), price, quantity: quantityParam(price, item.quantity, `${param}[${i}][quantity]`, 1), metadata: metadata(item.metadata) };
  });
  if (!entries.length) throw required(param);
  checkTogether(entries, param);
  return entries;
}

function itemObject(sub, entry, period, created) {
  return {
    id: entry.id,
    object: 'subscription_item',
    billing_thresholds: null,
    created,
    current_period_end: period.end,
    current_period_start: period.start,
    discounts: [],
    metadata: entry.metadata ?? {},
    plan: planOf(entry.price),
    price: entry.price,
    quantity: entry.quantity,
    subscription: sub.id,
    tax_rates: [],
  };
}

// --- What a subscription bills (lines before they are on an invoice; see invoices.mjs).

function licensedLines(account, sub, entries, period, { trial = false } = {}) {
  return entries
    .filter((e) => !isMetered(e.price))
    .map((e) => {
      const name = productName(account, e.price);
      const { interval, interval_count } = e.price.recurring;
      const every = interval_count === 1 ? interval : `every ${interval_count} ${interval}s`;
      return {
        amount: trial ? 0 : amountFor(e.price, e.quantity),
        description: trial ? `Trial period for ${name}` : `${e.quantity} × ${name} (at ${money(e.price.unit_amount_decimal, e.price.currency)} / ${every})`,
        quantity: e.quantity,
        price: e.price,
        period,
        subscription: sub.id,
        subscriptionItem: e.id,
        proration: false,
      };
    });
}

// Metered items bill in arrears: the meter's aggregate for the customer over [start, end), from
// when the item began measuring (it was added, or its price changed).
const usageSince = (item) => hidden(item).usageSince ?? item.created;

function usageLine(account, sub, price, itemId, start, end) {
  const quantity = Math.max(0, usage(account, price.recurring.meter, sub.customer, start, end));
  return {
    amount: amountFor(price, quantity),
    description: `${quantity} × ${productName(account, price)} (at ${money(price.unit_amount_decimal, price.currency)} / unit)`,
    quantity,
    price,
    period: { start, end },
    subscription: sub.id,
    subscriptionItem: itemId,
    proration: false,
  };
}

// The usage to bill up to `end`: the current metered items' since `start`, and that of items
// removed or repriced in the period (kept in `retired` until billed).
function usageLines(account, sub, start, end) {
  const current = sub.items.data
    .filter((item) => isMetered(item.price) && Math.max(start, usageSince(item)) < end)
    .map((item) => usageLine(account, sub, item.price, item.id, Math.max(start, usageSince(item)), end));
  const retired = (hidden(sub).retired ?? []).map((r) => usageLine(account, sub, r.price, r.id, r.start, r.end));
  return [...retired, ...current];
}

// A metered item leaving (or changing price) keeps its usage so far for the next invoice.
function retire(sub, item, now) {
  const start = Math.max(periodStart(sub), usageSince(item));
  if (start < now) (hidden(sub).retired ??= []).push({ id: item.id, price: item.price, start, end: now });
}

// Usage billed: what was retired is done with.
const usageBilled = (sub) => delete hidden(sub).retired;

// Remembers which invoice line billed each item, for the `credited_items` of later prorations.
function noteBilled(sub, invoice) {
  for (const line of invoice.lines.data) {
    const details = line.parent.subscription_item_details;
    const item = details && !details.proration && sub.items.data.find((i) => i.id === details.subscription_item);
    if (item && !isMetered(item.price)) hidden(item).billed = { invoice: invoice.id, invoice_line_items: [line.id] };
  }
}

function invoiceFor(account, sub, reason, lines, period) {
  const invoice = createInvoice(account, { customer: customerOf(account, sub), subscription: sub, reason, lines, period });
  sub.latest_invoice = invoice.id;
  noteBilled(sub, invoice);
  return invoice;
}

// --- Status changes.

// Runs `work` on a subscription and reports the result as one `customer.subscription.updated`:
// status changes on the way (a payment succeeding or failing) emit nothing of their own.
function quietly(sub, work) {
  hidden(sub).quiet = true;
  try {
    return work();
  } finally {
    delete hidden(sub).quiet;
  }
}

function changing(account, sub, work) {
  const before = clone(sub);
  quietly(sub, work);
  emitUpdate(account, 'customer.subscription.updated', sub, before);
}

function setStatus(account, sub, status) {
  const before = clone(sub);
  sub.status = status;
  if (!hidden(sub).quiet) emitUpdate(account, 'customer.subscription.updated', sub, before);
}

export function invoicePaid(account, invoice) {
  const sub = account.objects.get('subscription').get(invoice.parent?.subscription_details?.subscription);
  if (!sub || sub.latest_invoice !== invoice.id) return;
  if (['incomplete', 'past_due', 'unpaid'].includes(sub.status)) setStatus(account, sub, 'active');
  else if (sub.status === 'paused') {
    setStatus(account, sub, 'active');
    emit(account, 'customer.subscription.resumed', sub);
  }
}

export function invoiceFailed(account, invoice, { final }) {
  const sub = account.objects.get('subscription').get(invoice.parent?.subscription_details?.subscription);
  if (!sub || ENDED.includes(sub.status) || sub.latest_invoice !== invoice.id) return;
  if (['active', 'trialing'].includes(sub.status)) setStatus(account, sub, 'past_due');
  // Retries exhausted on the latest invoice: the account's setting decides (Stripe's default
  // cancels). An older invoice running out while the latest is paid changes nothing.
  if (!final) return;
  const action = account.settings.final_retry_action;
  if (action === 'cancel') cancelNow(account, sub, { reason: 'payment_failed' });
  else if (action === 'unpaid') setStatus(account, sub, 'unpaid');
}

function trialWillEnd(account, sub) {
  hidden(sub).trialWillEndSent = true;
  emit(account, 'customer.subscription.trial_will_end', sub);
}

// --- Creating.

function trialEndParam(p, now) {
  if (p.trial_end === 'now') return null;
  let trialEnd = int(p.trial_end, 'trial_end');
  const days = int(p.trial_period_days, 'trial_period_days', { min: 0 });
  if (trialEnd === undefined && days) trialEnd = now + days * DAY;
  if (trialEnd === undefined) return null;
  if (trialEnd <= now) throw invalid('trial_end must be in the future (or `now`).', 'trial_end');
  if (trialEnd - now > MAX_TRIAL) throw invalid('A trial can last at most 730 days.', 'trial_end');
  return trialEnd;
}

function methodParam(account, customer, id, param) {
  if (!id) return null;
  const method = account.ref('payment_method', id, param, 'PaymentMethod');
  if (method.customer !== customer.id) throw invalid(`The payment method ${id} must be attached to the customer ${customer.id} first.`, param);
  return method;
}

// What charging now would do (null: fine). For `error_if_incomplete`, asked before anything changes.
function wouldDecline(account, customer, sub, method, amount, offSession) {
  if (amount + customer.balance <= 0) return null;
  const charged = method ?? paymentMethodFor(account, customer, sub);
  return charged ? decline(charged, { offSession }) : { message: 'The customer has no default payment method to charge.', code: 'payment_method_missing' };
}

function refuseIncomplete(failure) {
  if (failure.code === 'payment_method_missing') throw invalid(`${failure.message} (payment_behavior=error_if_incomplete)`, 'payment_behavior', failure.code);
  throw cardError(failure.message, failure.code, failure.decline_code);
}

// `onSession`: the customer is at the checkout page (a card needing authentication passes).
export function createSubscription(account, p, { onSession = false } = {}) {
  if (!p.customer) throw required('customer');
  const customer = account.ref('customer', p.customer, 'customer');
  const entries = readNewItems(account, p.items, 'items');
  const now = account.now(customer);
  const trialEnd = trialEndParam(p, now);
  const paymentBehavior = oneOf(p.payment_behavior, ['allow_incomplete', 'default_incomplete', 'error_if_incomplete', 'pending_if_incomplete'], 'payment_behavior') ?? 'allow_incomplete';
  oneOf(p.proration_behavior, PRORATION_BEHAVIORS, 'proration_behavior');
  const missing =
    oneOf(p.trial_settings?.end_behavior?.missing_payment_method, ['cancel', 'pause', 'create_invoice'], 'trial_settings[end_behavior][missing_payment_method]') ?? 'create_invoice';
  const method = methodParam(account, customer, p.default_payment_method, 'default_payment_method');
  const cancelAtPeriodEnd = bool(p.cancel_at_period_end, 'cancel_at_period_end') ?? false;
  const period = { start: now, end: trialEnd ?? periodEndAfter(now, entries[0].price.recurring, now) };
  if (!trialEnd && paymentBehavior === 'error_if_incomplete') {
    const amount = entries.filter((e) => !isMetered(e.price)).reduce((sum, e) => sum + amountFor(e.price, e.quantity), 0);
    const failure = wouldDecline(account, customer, { default_payment_method: method?.id }, method, amount, !onSession);
    if (failure) refuseIncomplete(failure);
  }

  const sub = {
    id: newId('sub'),
    object: 'subscription',
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: trialEnd ?? now,
    billing_cycle_anchor_config: null,
    billing_mode: { flexible: {}, type: 'flexible' },
    billing_schedules: [],
    billing_thresholds: null,
    cancel_at: cancelAtPeriodEnd ? period.end : null,
    cancel_at_period_end: cancelAtPeriodEnd,
    canceled_at: cancelAtPeriodEnd ? now : null,
    cancellation_details: { comment: null, feedback: null, reason: cancelAtPeriodEnd ? 'cancellation_requested' : null },
    collection_method: 'charge_automatically',
    created: now,
    currency: entries[0].price.currency,
    customer: customer.id,
    customer_account: null,
    days_until_due: null,
    default_payment_method: method?.id ?? null,
    default_source: null,
    default_tax_rates: [],
    description: p.description || null,
    discounts: [],
    ended_at: null,
    invoice_settings: { account_tax_ids: null, custom_fields: null, description: null, footer: null, issuer: { type: 'self' } },
    items: { object: 'list', data: [], has_more: false, url: '' },
    latest_invoice: null,
    livemode: false,
    managed_payments: { enabled: false },
    metadata: metadata(p.metadata),
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: null,
    payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: 'off' },
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: now,
    status: trialEnd ? 'trialing' : 'incomplete',
    test_clock: customer.test_clock,
    transfer_data: null,
    trial_end: trialEnd,
    trial_settings: { end_behavior: { missing_payment_method: missing } },
    trial_start: trialEnd ? now : null,
  };
  sub.items.url = `/v1/subscription_items?subscription=${sub.id}`;
  sub.items.data = entries.map((e) => itemObject(sub, e, period, now));
  account.put(sub);
  customer.currency ??= sub.currency;

  // As Stripe does, it is created `incomplete` (or `trialing`) with its first invoice; paying that
  // invoice then makes it `active`, a `customer.subscription.updated` of its own.
  const lines = licensedLines(account, sub, sub.items.data, period, { trial: Boolean(trialEnd) });
  const invoice = invoiceFor(account, sub, 'subscription_create', lines, { start: now, end: now });
  emit(account, 'customer.subscription.created', sub);
  // A trial's invoice is $0, paid at once.
  finalize(account, invoice, { charge: paymentBehavior !== 'default_incomplete', offSession: !onSession });
  if (trialEnd && trialEnd - now < TRIAL_WILL_END_BEFORE) trialWillEnd(account, sub);
  return sub;
}

// --- Changing items: what a change would do, computed without changing anything, so the update
// and `create_preview` agree.

// A credit for the unused rest of the period of what `entry` bills, or a debit for the rest of
// the period at the new price or quantity; to the second, of the period's full amount.
function prorationLine(account, sub, kind, entry, at) {
  const start = periodStart(sub);
  const end = periodEnd(sub);
  const amount = Math.round((amountFor(entry.price, entry.quantity) * (end - at)) / (end - start));
  const name = `${entry.quantity > 1 ? `${entry.quantity} × ` : ''}${productName(account, entry.price)}`;
  return {
    amount: kind === 'credit' ? -amount : amount,
    description: `${kind === 'credit' ? 'Unused' : 'Remaining'} time on ${name} after ${formatDate(at)}`,
    quantity: entry.quantity,
    price: entry.price,
    period: { start: at, end },
    subscription: sub.id,
    subscriptionItem: entry.id,
    proration: true,
    credited: kind === 'credit' ? (hidden(entry).billed ?? null) : null,
  };
}

function planChange(account, sub, givenItems, { at, behavior, param = 'items' }) {
  const next = sub.items.data.map((item) => ({ id: item.id, price: item.price, quantity: item.quantity, metadata: item.metadata, item }));
  array(givenItems).forEach((given, i) => {
    const name = `${param}[${i}]`;
    if (given.id) {
      const entry = next.find((e) => e.id === given.id);
      if (!entry) throw invalid(`No such subscription item on ${sub.id}: '${given.id}'`, `${name}[id]`, 'resource_missing');
      if (bool(given.deleted, `${name}[deleted]`)) return next.splice(next.indexOf(entry), 1);
      if (given.price) entry.price = priceParam(account, given.price, `${name}[price]`);
      entry.quantity = quantityParam(entry.price, given.quantity, `${name}[quantity]`, entry.quantity ?? 1);
      entry.metadata = metadata(given.metadata, entry.metadata);
      return;
    }
    if (!given.price) throw required(`${name}[price]`);
    const price = priceParam(account, given.price, `${name}[price]`);
    next.push({ id: newId('si', 9), price, quantity: quantityParam(price, given.quantity, `${name}[quantity]`, 1), metadata: metadata(given.metadata) });
  });
  if (!next.length) throw invalid('A subscription needs at least one item; cancel it instead.', param);
  checkTogether(next, param);
  if (at < periodStart(sub) || at > periodEnd(sub)) throw invalid('proration_date must be within the current period.', 'proration_date');

  const intervalChanged = !sameInterval(recurringOf(sub), next[0].price.recurring);
  // Licensed prices only, and only for time already paid for (not in a trial).
  const prorations = [];
  if (sub.status !== 'trialing' && behavior !== 'none') {
    for (const item of sub.items.data.filter((i) => !isMetered(i.price))) {
      const kept = next.find((e) => e.id === item.id);
      if (intervalChanged || !kept || kept.price !== item.price || kept.quantity !== item.quantity) prorations.push(prorationLine(account, sub, 'credit', item, at));
    }
    for (const entry of intervalChanged ? [] : next.filter((e) => !isMetered(e.price))) {
      const was = entry.item;
      if (!was || was.price !== entry.price || was.quantity !== entry.quantity) prorations.push(prorationLine(account, sub, 'debit', entry, at));
    }
  }
  const lines = prorations.filter((l) => l.amount !== 0);
  // A new interval (outside a trial) is billed at once and restarts the billing cycle now.
  const billsNow = sub.status !== 'trialing' && (intervalChanged || (behavior === 'always_invoice' && lines.length > 0));
  return { next, prorations: lines, intervalChanged, billsNow, behavior };
}

// The lines of the invoice a change bills at once: prorations, then (for a new interval) the
// usage so far and the new period.
function immediateLines(account, sub, change, now) {
  if (!change.intervalChanged) return change.prorations;
  const period = { start: now, end: periodEndAfter(now, change.next[0].price.recurring, now) };
  return [...change.prorations, ...usageLines(account, sub, periodStart(sub), now), ...licensedLines(account, sub, change.next, period)];
}

function applyChange(account, sub, change, now) {
  const lines = change.billsNow ? immediateLines(account, sub, change, now) : [];
  const newPeriod = change.intervalChanged && sub.status !== 'trialing';
  for (const item of sub.items.data.filter((i) => isMetered(i.price))) {
    const kept = change.next.find((e) => e.id === item.id);
    // A new period bills all usage so far at once; otherwise a leaving price keeps its usage
    // (except in a trial, where usage is free).
    if (newPeriod) hidden(item).usageSince = now;
    else if (!kept || kept.price !== item.price) {
      if (sub.status !== 'trialing') retire(sub, item, now);
      hidden(item).usageSince = now;
    }
  }
  if (newPeriod) usageBilled(sub);
  const period = newPeriod ? { start: now, end: periodEndAfter(now, change.next[0].price.recurring, now) } : { start: periodStart(sub), end: periodEnd(sub) };
  sub.items.data = change.next.map((e) => {
    if (!e.item) return itemObject(sub, e, period, now);
    Object.assign(e.item, { price: e.price, plan: planOf(e.price), quantity: e.quantity, metadata: e.metadata, current_period_start: period.start, current_period_end: period.end });
    return e.item;
  });
  if (change.billsNow) {
    if (change.intervalChanged) sub.billing_cycle_anchor = now;
    const invoice = invoiceFor(account, sub, 'subscription_update', lines, { start: now, end: now });
    finalize(account, invoice);
  } else if (change.behavior === 'create_prorations') {
    const customer = customerOf(account, sub);
    for (const line of change.prorations) pendingItem(account, customer, line);
  }
}

// Replaces all items (a schedule's phase), matching existing items by price.
export function replaceItems(account, sub, entries, behavior) {
  const kept = new Set();
  const given = entries.map((e) => {
    const item = sub.items.data.find((i) => i.price.id === e.price.id && !kept.has(i.id));
    if (!item) return { price: e.price.id, ...(e.quantity !== null && { quantity: String(e.quantity) }) };
    kept.add(item.id);
    return { id: item.id, ...(e.quantity !== null && { quantity: String(e.quantity) }) };
  });
  for (const item of sub.items.data) if (!kept.has(item.id)) given.push({ id: item.id, deleted: 'true' });
  const now = account.now(sub);
  changing(account, sub, () => applyChange(account, sub, planChange(account, sub, given, { at: now, behavior }), now));
}

// --- Updating.

function updateSubscription(account, sub, p) {
  const customer = customerOf(account, sub);
  const now = account.now(sub);
  const asked = Object.keys(p).filter((k) => !['expand', 'metadata'].includes(k));
  if (ENDED.includes(sub.status) && asked.some((k) => k !== 'cancellation_details')) {
    throw invalid(`A ${sub.status} subscription can only update its metadata and cancellation_details.`, asked[0]);
  }
  if (sub.status === 'incomplete' && asked.some((k) => !['default_payment_method', 'payment_behavior'].includes(k))) {
    throw invalid('An incomplete subscription can only update its metadata and default payment method until its first invoice is paid.', asked[0]);
  }
  const behavior = oneOf(p.proration_behavior, PRORATION_BEHAVIORS, 'proration_behavior') ?? 'create_prorations';
  const paymentBehavior = oneOf(p.payment_behavior, ['allow_incomplete', 'default_incomplete', 'error_if_incomplete', 'pending_if_incomplete'], 'payment_behavior');
  const method = methodParam(account, customer, p.default_payment_method, 'default_payment_method');
  const cancelAtPeriodEnd = bool(p.cancel_at_period_end, 'cancel_at_period_end');
  if (cancelAtPeriodEnd !== undefined && sub.schedule) {
    throw invalid(`The subscription is managed by the subscription schedule ${sub.schedule}; change the schedule (or release it) instead.`, 'cancel_at_period_end');
  }
  const at = int(p.proration_date, 'proration_date') ?? now;
  const change = p.items !== undefined ? planChange(account, sub, p.items, { at, behavior }) : null;
  let trialEnd;
  if (p.trial_end !== undefined) {
    if (sub.status !== 'trialing') throw invalid('trial_end can only change while the subscription is trialing.', 'trial_end');
    trialEnd = p.trial_end === 'now' ? now : int(p.trial_end, 'trial_end');
    if (trialEnd < now) throw invalid('trial_end must be in the future (or `now`).', 'trial_end');
    if (trialEnd - sub.trial_start > MAX_TRIAL) throw invalid('A trial can last at most 730 days.', 'trial_end');
  }
  if (paymentBehavior === 'error_if_incomplete' && (change?.billsNow || trialEnd === now)) {
    const lines = trialEnd === now ? licensedLines(account, sub, change?.next ?? sub.items.data, { start: now, end: now }) : immediateLines(account, sub, change, now);
    const amount = lines.reduce((sum, l) => sum + l.amount, 0);
    const failure = wouldDecline(account, customer, { default_payment_method: method?.id ?? sub.default_payment_method }, method, amount, true);
    if (failure) refuseIncomplete(failure);
  }

  changing(account, sub, () => {
    sub.metadata = metadata(p.metadata, sub.metadata);
    if (p.description !== undefined) sub.description = p.description || null;
    if (p.default_payment_method !== undefined) sub.default_payment_method = method?.id ?? null;
    if (cancelAtPeriodEnd !== undefined) {
      Object.assign(sub, cancelAtPeriodEnd ? { cancel_at_period_end: true, cancel_at: periodEnd(sub), canceled_at: now } : { cancel_at_period_end: false, cancel_at: null, canceled_at: null });
      sub.cancellation_details.reason = cancelAtPeriodEnd ? 'cancellation_requested' : null;
    }
    if (p.cancellation_details) {
      sub.cancellation_details.comment = p.cancellation_details.comment ?? sub.cancellation_details.comment;
      sub.cancellation_details.feedback = p.cancellation_details.feedback ?? sub.cancellation_details.feedback;
    }
    if (change) applyChange(account, sub, change, now);
    if (trialEnd === now) endTrialNow(account, sub, now);
    else if (trialEnd !== undefined) {
      sub.trial_end = sub.billing_cycle_anchor = trialEnd;
      for (const item of sub.items.data) item.current_period_end = trialEnd;
      if (trialEnd - now < TRIAL_WILL_END_BEFORE && !hidden(sub).trialWillEndSent) trialWillEnd(account, sub);
    }
  });
  return sub;
}

// `trial_end=now`: the trial ends, billed at once, and the billing cycle restarts now.
function endTrialNow(account, sub, now) {
  if (!hidden(sub).trialWillEndSent) trialWillEnd(account, sub);
  sub.trial_end = sub.billing_cycle_anchor = now;
  startPeriod(account, sub, now, { status: 'active', reason: 'subscription_update', finalizeAfter: 0 });
}

// A new billing period from `at`: item periods move on, and the invoice for it (with the ended
// period's usage when `usageFrom` is given) is drafted, finalized `finalizeAfter` seconds later.
function startPeriod(account, sub, at, { status, reason, usageFrom, finalizeAfter }) {
  const usageSoFar = usageFrom === undefined ? [] : usageLines(account, sub, usageFrom, at);
  if (usageFrom !== undefined) usageBilled(sub);
  const end = periodEndAfter(sub.billing_cycle_anchor, recurringOf(sub), at);
  for (const item of sub.items.data) Object.assign(item, { current_period_start: at, current_period_end: end });
  if (status) sub.status = status;
  const invoicePeriod = usageFrom === undefined ? { start: at, end: at } : { start: usageFrom, end: at };
  const invoice = invoiceFor(account, sub, reason, [...usageSoFar, ...licensedLines(account, sub, sub.items.data, { start: at, end })], invoicePeriod);
  if (finalizeAfter) invoice.automatically_finalizes_at = at + finalizeAfter;
  else finalize(account, invoice, { charge: sub.status !== 'unpaid' });
  return invoice;
}

// --- What the clock does to a subscription (run by clock.mjs in time order).

function renew(account, sub) {
  changing(account, sub, () => startPeriod(account, sub, periodEnd(sub), { reason: 'subscription_cycle', usageFrom: periodStart(sub), finalizeAfter: HOUR }));
}

// Trial over: active with a payment method; without one, `missing_payment_method` decides.
function endTrial(account, sub) {
  const method = paymentMethodFor(account, customerOf(account, sub), sub);
  const missing = sub.trial_settings.end_behavior.missing_payment_method;
  if (!method && missing === 'cancel') return cancelNow(account, sub, { reason: 'cancellation_requested' });
  if (!method && missing === 'pause') {
    setStatus(account, sub, 'paused');
    emit(account, 'customer.subscription.paused', sub);
    return;
  }
  changing(account, sub, () => startPeriod(account, sub, sub.trial_end, { status: 'active', reason: 'subscription_cycle', finalizeAfter: HOUR }));
}

function cancelAtPeriodEnd(account, sub) {
  cancelNow(account, sub, { reason: sub.cancellation_details.reason ?? 'cancellation_requested', atPeriodEnd: true });
}

// The first invoice unpaid 23 hours after creation: over for good, its invoice voided.
function expireIncomplete(account, sub) {
  const now = account.now(sub);
  changing(account, sub, () => {
    Object.assign(sub, { status: 'incomplete_expired', canceled_at: now, ended_at: now });
    const invoice = account.objects.get('invoice').get(sub.latest_invoice);
    if (invoice?.status === 'open') voidInvoice(account, invoice);
  });
}

function upcoming(account, sub, boundary) {
  hidden(sub).upcomingFor = boundary;
  emit(account, 'invoice.upcoming', nextInvoice(account, sub, null, { id: null, reason: 'upcoming' }));
}

export function subscriptionMoments(account, sub) {
  const state = hidden(sub);
  if (sub.status === 'incomplete') return [{ at: sub.created + INCOMPLETE_EXPIRES_AFTER, rank: 2, run: () => expireIncomplete(account, sub) }];
  if (!['trialing', 'active', 'past_due', 'unpaid'].includes(sub.status)) return [];
  const end = periodEnd(sub);
  const moments = [];
  if (sub.status === 'trialing' && !state.trialWillEndSent) {
    moments.push({ at: sub.trial_end - TRIAL_WILL_END_BEFORE, rank: 5, run: () => trialWillEnd(account, sub) });
  }
  if (sub.cancel_at_period_end) moments.push({ at: end, rank: 1, run: () => cancelAtPeriodEnd(account, sub) });
  else if (sub.status === 'trialing') moments.push({ at: end, rank: 2, run: () => endTrial(account, sub) });
  else moments.push({ at: end, rank: 2, run: () => renew(account, sub) });
  const notice = end - UPCOMING_BEFORE;
  if (!sub.cancel_at_period_end && sub.status !== 'unpaid' && state.upcomingFor !== end && notice > periodStart(sub)) {
    moments.push({ at: notice, rank: 5, run: () => upcoming(account, sub, end) });
  }
  return moments;
}

// --- Ending.

// Cancels now. `invoiceNow` bills the usage so far and pending items at once; `prorate` credits
// the unused time; with neither, pending prorations are dropped (as Stripe does). At the end of
// a period set to cancel, its usage and pending items (if any) get a last invoice; nothing renews.
export function cancelNow(account, sub, { reason = 'cancellation_requested', invoiceNow = false, prorate = false, atPeriodEnd = false }) {
  const now = account.now(sub);
  quietly(sub, () => endNow(account, sub, { now, reason, invoiceNow, prorate, atPeriodEnd }));
  emit(account, 'customer.subscription.deleted', sub);
  return sub;
}

function endNow(account, sub, { now, reason, invoiceNow, prorate, atPeriodEnd }) {
  for (const invoice of account.all('invoice')) {
    if (invoice.parent?.subscription_details?.subscription === sub.id && ['draft', 'open'].includes(invoice.status)) stopCollecting(invoice);
  }
  if (prorate && sub.status !== 'trialing') {
    const customer = customerOf(account, sub);
    for (const item of sub.items.data.filter((i) => !isMetered(i.price))) {
      const credit = prorationLine(account, sub, 'credit', item, now);
      if (credit.amount !== 0) pendingItem(account, customer, credit);
    }
  }
  if (invoiceNow || atPeriodEnd) {
    // Usage in a trial is free.
    const usageDue = sub.status === 'trialing' ? [] : usageLines(account, sub, periodStart(sub), now);
    if (invoiceNow || usageDue.some((l) => l.amount > 0) || pendingLines(account, sub.id).length) {
      const invoice = invoiceFor(account, sub, atPeriodEnd ? 'subscription_cycle' : 'subscription_update', usageDue, { start: periodStart(sub), end: now });
      usageBilled(sub);
      if (atPeriodEnd) invoice.automatically_finalizes_at = now + HOUR;
      else finalize(account, invoice);
    }
  } else if (!prorate) {
    dropPending(account, sub.id);
  }
  Object.assign(sub, { status: 'canceled', canceled_at: sub.canceled_at ?? now, ended_at: now });
  sub.cancellation_details.reason = reason;
  const schedule = sub.schedule && account.objects.get('subscription_schedule').get(sub.schedule);
  if (schedule?.status === 'active') endSchedule(account, schedule, 'canceled');
}

// Paused → a new period from now, invoiced at once; active when that invoice is paid (now, or
// later through invoicePaid, which also emits `customer.subscription.resumed`).
function resume(account, sub, p) {
  if (sub.status !== 'paused') throw invalid('Only a paused subscription can be resumed.');
  oneOf(p.billing_cycle_anchor, ['now'], 'billing_cycle_anchor');
  const now = account.now(sub);
  changing(account, sub, () => {
    sub.billing_cycle_anchor = now;
    startPeriod(account, sub, now, { reason: 'subscription_update', finalizeAfter: 0 });
  });
  return sub;
}

// --- Previews: the invoice a change would make (or the next one), not stored.

// The next renewal invoice: with a change's items and prorations if given, else with the items
// a schedule's phase brings then.
function nextInvoice(account, sub, change, { id, reason }) {
  const customer = customerOf(account, sub);
  const end = periodEnd(sub);
  const entries = change?.next ?? phaseItemsAt(account, sub, end) ?? sub.items.data;
  const anchor = sameInterval(entries[0].price.recurring, recurringOf(sub)) ? sub.billing_cycle_anchor : end;
  const period = { start: end, end: periodEndAfter(anchor, entries[0].price.recurring, end) };
  const usageSoFar = sub.status === 'trialing' ? [] : usageLines(account, sub, periodStart(sub), end);
  const lines = [...pendingLines(account, sub.id), ...(change?.prorations ?? []), ...usageSoFar, ...licensedLines(account, sub, entries, period)];
  const invoice = buildInvoice(account, { customer, subscription: sub, reason, lines, period: { start: periodStart(sub), end }, id });
  invoice.created = end;
  return invoice;
}

export function previewInvoice(account, p) {
  const sub = p.subscription ? account.ref('subscription', p.subscription, 'subscription') : null;
  if (!p.customer && !sub) throw required('customer');
  const customer = account.ref('customer', p.customer ?? sub.customer, 'customer');
  if (sub && sub.customer !== customer.id) throw invalid(`The subscription ${sub.id} belongs to another customer.`, 'subscription');
  const details = p.subscription_details ?? {};
  const id = newId('upcoming_in');
  const now = account.now(customer);
  if (!sub) {
    const entries = readNewItems(account, details.items, 'subscription_details[items]');
    const period = { start: now, end: periodEndAfter(now, entries[0].price.recurring, now) };
    return buildInvoice(account, { customer, subscription: null, reason: 'subscription_create', lines: licensedLines(account, { id: null }, entries, period), period: { start: now, end: now }, id });
  }
  if (ENDED.includes(sub.status) || (sub.cancel_at_period_end && !details.items)) {
    throw invalid(`No upcoming invoices for customer: ${customer.id}`, 'subscription', 'invoice_upcoming_none');
  }
  const behavior = oneOf(details.proration_behavior, PRORATION_BEHAVIORS, 'subscription_details[proration_behavior]') ?? 'create_prorations';
  const at = int(details.proration_date, 'subscription_details[proration_date]') ?? now;
  const change = details.items ? planChange(account, sub, details.items, { at, behavior, param: 'subscription_details[items]' }) : null;
  if (change?.billsNow) {
    const lines = [...pendingLines(account, sub.id), ...immediateLines(account, sub, change, now)];
    return buildInvoice(account, { customer, subscription: sub, reason: 'subscription_update', lines, period: { start: now, end: now }, id });
  }
  return nextInvoice(account, sub, change, { id, reason: 'upcoming' });
}

function listSubscriptions(account, p, url) {
  const status = p.status ?? 'default';
  const statuses = ['active', 'past_due', 'unpaid', 'canceled', 'incomplete', 'incomplete_expired', 'trialing', 'paused', 'all', 'ended', 'default'];
  oneOf(status, statuses, 'status');
  const wanted = (s) =>
    status === 'all' || (status === 'ended' ? ENDED.includes(s.status) : status === 'default' ? !ENDED.includes(s.status) : s.status === status);
  const subs = account
    .all('subscription')
    .filter((s) => wanted(s) && (p.customer === undefined || s.customer === p.customer) && (p.price === undefined || s.items.data.some((i) => i.price.id === p.price)));
  return list(subs, p, url);
}

function listItems(account, p, url) {
  if (!p.subscription) throw required('subscription');
  const items = account.ref('subscription', p.subscription, 'subscription').items.data;
  return { object: 'list', data: items, has_more: false, url };
}

function findItem(account, id) {
  for (const sub of account.all('subscription')) {
    const item = sub.items.data.find((i) => i.id === id);
    if (item) return item;
  }
  throw notFound('subscription_item', id);
}

export const routes = [
  ['POST', /^\/v1\/subscriptions$/, (a, p) => createSubscription(a, p)],
  ['GET', /^\/v1\/subscriptions$/, (a, p, _, url) => listSubscriptions(a, p, url)],
  ['GET', /^\/v1\/subscriptions\/([^/]+)$/, (a, p, [id]) => a.get('subscription', id)],
  ['POST', /^\/v1\/subscriptions\/([^/]+)$/, (a, p, [id]) => updateSubscription(a, a.get('subscription', id), p)],
  [
    'DELETE',
    /^\/v1\/subscriptions\/([^/]+)$/,
    (a, p, [id]) => {
      const sub = a.get('subscription', id);
      if (ENDED.includes(sub.status)) throw invalid(`The subscription ${sub.id} has already ended.`);
      return cancelNow(a, sub, { invoiceNow: bool(p.invoice_now, 'invoice_now'), prorate: bool(p.prorate, 'prorate') });
    },
  ],
  ['POST', /^\/v1\/subscriptions\/([^/]+)\/resume$/, (a, p, [id]) => resume(a, a.get('subscription', id), p)],
  ['GET', /^\/v1\/subscription_items$/, (a, p, _, url) => listItems(a, p, url)],
  ['GET', /^\/v1\/subscription_items\/([^/]+)$/, (a, p, [id]) => findItem(a, id)],
];
