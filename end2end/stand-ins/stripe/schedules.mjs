// Subscription schedules, as used for changes that wait for the end of a period (downgrades):
// made from a subscription, given phases, and stepped through by the clock.

import { addInterval, array, clone, hidden, int, invalid, list, metadata, newId, oneOf, required } from './core.mjs';
import { ENDED, cancelNow, periodEnd, replaceItems } from './subscriptions.mjs';
import { emit, emitUpdate } from './webhooks.mjs';

function phaseObject(entries, start, end, currency, prorationBehavior) {
  return {
    add_invoice_items: [],
    application_fee_percent: null,
    billing_cycle_anchor: null,
    billing_thresholds: null,
    collection_method: null,
    currency,
    default_payment_method: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    end_date: end,
    invoice_settings: null,
    items: entries.map((e) => ({ billing_thresholds: null, discounts: [], metadata: {}, plan: e.price.id, price: e.price.id, quantity: e.quantity, tax_rates: [] })),
    metadata: {},
    on_behalf_of: null,
    proration_behavior: prorationBehavior,
    start_date: start,
    transfer_data: null,
    trial_end: null,
  };
}

const currentIndex = (schedule) => hidden(schedule).phase;

function setCurrentPhase(schedule) {
  const phase = schedule.phases[currentIndex(schedule)];
  schedule.current_phase = phase ? { end_date: phase.end_date, start_date: phase.start_date } : null;
}

// `from_subscription`: one phase, the subscription's items until the end of its period.
function createSchedule(account, p) {
  if (!p.from_subscription) throw required('from_subscription');
  const sub = account.ref('subscription', p.from_subscription, 'from_subscription', 'subscription');
  if (sub.schedule) throw invalid(`The subscription ${sub.id} is already managed by the schedule ${sub.schedule}.`, 'from_subscription');
  if (ENDED.includes(sub.status)) throw invalid(`The subscription ${sub.id} has ended.`, 'from_subscription');
  const entries = sub.items.data.map((i) => ({ price: i.price, quantity: i.quantity }));
  const schedule = {
    id: newId('sub_sched'),
    object: 'subscription_schedule',
    application: null,
    billing_mode: clone(sub.billing_mode),
    canceled_at: null,
    completed_at: null,
    created: account.now(sub),
    current_phase: null,
    customer: sub.customer,
    customer_account: null,
    default_settings: {
      application_fee_percent: null,
      automatic_tax: { disabled_reason: null, enabled: false, liability: null },
      billing_cycle_anchor: 'automatic',
      billing_thresholds: null,
      collection_method: 'charge_automatically',
      default_payment_method: sub.default_payment_method,
      description: null,
      invoice_settings: { account_tax_ids: null, custom_fields: null, days_until_due: null, description: null, footer: null, issuer: { type: 'self' } },
      on_behalf_of: null,
      transfer_data: null,
    },
    end_behavior: 'release',
    livemode: false,
    metadata: metadata(p.metadata),
    phases: [phaseObject(entries, sub.items.data[0].current_period_start, periodEnd(sub), sub.currency, 'create_prorations')],
    released_at: null,
    released_subscription: null,
    status: 'active',
    subscription: sub.id,
    test_clock: sub.test_clock,
  };
  hidden(schedule).phase = 0;
  setCurrentPhase(schedule);
  account.put(schedule);
  const before = clone(sub);
  sub.schedule = schedule.id;
  emit(account, 'subscription_schedule.created', schedule);
  emitUpdate(account, 'customer.subscription.updated', sub, before);
  return schedule;
}

// `phases` replaces the phases; the current one must keep its start. A phase without end_date
// lasts `iterations` (default 1) intervals of its prices.
function updateSchedule(account, schedule, p) {
  if (schedule.status !== 'active') throw invalid(`You can't update a schedule that is ${schedule.status}.`);
  const sub = account.objects.get('subscription').get(schedule.subscription);
  const endBehavior = oneOf(p.end_behavior, ['release', 'cancel'], 'end_behavior');
  let phases;
  if (p.phases !== undefined) {
    const current = schedule.phases[currentIndex(schedule)];
    let previousEnd = current.start_date;
    phases = array(p.phases).map((given, i) => {
      const at = `phases[${i}]`;
      const entries = array(given.items).map((item, j) => {
        if (!item?.price) throw required(`${at}[items][${j}][price]`);
        const price = account.ref('price', item.price, `${at}[items][${j}][price]`, 'price');
        if (!price.recurring) throw invalid(`The price ${price.id} is not recurring.`, `${at}[items][${j}][price]`);
        const metered = price.recurring.usage_type === 'metered';
        return { price, quantity: metered ? null : (int(item.quantity, `${at}[items][${j}][quantity]`, { min: 0 }) ?? 1) };
      });
      if (!entries.length) throw required(`${at}[items]`);
      const start = given.start_date === 'now' ? account.now(schedule) : (int(given.start_date, `${at}[start_date]`) ?? previousEnd);
      if (start !== previousEnd) throw invalid(i === 0 ? "The current phase's start_date can't change." : 'Each phase must start when the previous one ends.', `${at}[start_date]`);
      const { interval, interval_count } = entries[0].price.recurring;
      const iterations = int(given.iterations, `${at}[iterations]`, { min: 1 }) ?? 1;
      const end = int(given.end_date, `${at}[end_date]`) ?? addInterval(start, interval, interval_count * iterations);
      if (end <= start) throw invalid('A phase must end after it starts.', `${at}[end_date]`);
      previousEnd = end;
      const proration = oneOf(given.proration_behavior, ['create_prorations', 'always_invoice', 'none'], `${at}[proration_behavior]`) ?? 'create_prorations';
      return { phase: phaseObject(entries, start, end, entries[0].price.currency, proration), entries };
    });
    if (!phases.length) throw required('phases');
  }
  const before = clone(schedule);
  if (endBehavior) schedule.end_behavior = endBehavior;
  schedule.metadata = metadata(p.metadata, schedule.metadata);
  if (phases) {
    // The phases so far stay as they were; the current one is replaced (and applied now if its
    // items differ from the subscription's), then the later ones.
    const done = schedule.phases.slice(0, currentIndex(schedule));
    schedule.phases = [...done, ...phases.map((x) => x.phase)];
    setCurrentPhase(schedule);
    const [current] = phases;
    const differs =
      current.entries.length !== sub.items.data.length ||
      current.entries.some((e) => !sub.items.data.some((i) => i.price.id === e.price.id && i.quantity === e.quantity));
    if (differs) replaceItems(account, sub, current.entries, current.phase.proration_behavior);
  }
  emitUpdate(account, 'subscription_schedule.updated', schedule, before);
  return schedule;
}

// The next phase starts: its items apply without prorations, before that period's renewal
// invoice is made. With `end_behavior=release` the subscription is set free once its last phase
// has started.
function startNextPhase(account, schedule) {
  const sub = account.objects.get('subscription').get(schedule.subscription);
  const before = clone(schedule);
  hidden(schedule).phase += 1;
  setCurrentPhase(schedule);
  const phase = schedule.phases[currentIndex(schedule)];
  const entries = phase.items.map((item) => ({ price: account.objects.get('price').get(item.price), quantity: item.quantity }));
  replaceItems(account, sub, entries, 'none');
  emitUpdate(account, 'subscription_schedule.updated', schedule, before);
  if (currentIndex(schedule) === schedule.phases.length - 1 && schedule.end_behavior === 'release') release(account, schedule);
}

function release(account, schedule) {
  if (schedule.status !== 'active') throw invalid(`You can't release a schedule that is ${schedule.status}.`);
  const sub = account.objects.get('subscription').get(schedule.subscription);
  Object.assign(schedule, { status: 'released', released_at: account.now(schedule), released_subscription: sub.id, subscription: null, current_phase: null });
  const before = clone(sub);
  sub.schedule = null;
  emit(account, 'subscription_schedule.released', schedule);
  emitUpdate(account, 'customer.subscription.updated', sub, before);
  return schedule;
}

// The schedule stops (canceled, or completed at the end of its last phase).
export function endSchedule(account, schedule, status) {
  Object.assign(schedule, { status, current_phase: null });
  schedule[status === 'canceled' ? 'canceled_at' : 'completed_at'] = account.now(schedule);
  emit(account, `subscription_schedule.${status}`, schedule);
}

// Canceling a schedule cancels its subscription now, as Stripe does.
function cancel(account, schedule, p) {
  if (schedule.status !== 'active') throw invalid(`You can't cancel a schedule that is ${schedule.status}.`);
  const sub = account.objects.get('subscription').get(schedule.subscription);
  if (sub && !ENDED.includes(sub.status)) cancelNow(account, sub, { invoiceNow: p.invoice_now === 'true', prorate: p.prorate === 'true' });
  if (schedule.status === 'active') endSchedule(account, schedule, 'canceled');
  return schedule;
}

// The items a subscription's schedule gives it from `at` on, if a phase starts then.
export function phaseItemsAt(account, sub, at) {
  const schedule = sub.schedule && account.objects.get('subscription_schedule').get(sub.schedule);
  const phase = schedule?.status === 'active' && schedule.phases.find((p, i) => i > currentIndex(schedule) && p.start_date === at);
  if (!phase) return null;
  // Items keep their ids where the price stays (as replaceItems does); new ones get theirs then.
  return phase.items.map((item) => ({
    id: sub.items.data.find((i) => i.price.id === item.price)?.id ?? newId('si', 9),
    price: account.objects.get('price').get(item.price),
    quantity: item.quantity,
  }));
}

export function scheduleMoments(account, schedule) {
  if (schedule.status !== 'active') return [];
  const index = currentIndex(schedule);
  const next = schedule.phases[index + 1];
  if (next) return [{ at: next.start_date, rank: 0, run: () => startNextPhase(account, schedule) }];
  const last = schedule.phases[index];
  const sub = account.objects.get('subscription').get(schedule.subscription);
  // After the last phase: `cancel` ends the subscription; `release` lets it go on as it is.
  if (schedule.end_behavior === 'cancel') {
    const run = () => {
      endSchedule(account, schedule, 'completed');
      cancelNow(account, sub, {});
    };
    return [{ at: last.end_date, rank: 0, run }];
  }
  return [{ at: last.end_date, rank: 0, run: () => release(account, schedule) }];
}

export const routes = [
  ['POST', /^\/v1\/subscription_schedules$/, (a, p) => createSchedule(a, p)],
  ['GET', /^\/v1\/subscription_schedules$/, (a, p, _, url) => list(a.all('subscription_schedule').filter((s) => p.customer === undefined || s.customer === p.customer), p, url)],
  ['GET', /^\/v1\/subscription_schedules\/([^/]+)$/, (a, p, [id]) => a.get('subscription_schedule', id)],
  ['POST', /^\/v1\/subscription_schedules\/([^/]+)$/, (a, p, [id]) => updateSchedule(a, a.get('subscription_schedule', id), p)],
  ['POST', /^\/v1\/subscription_schedules\/([^/]+)\/release$/, (a, p, [id]) => release(a, a.get('subscription_schedule', id))],
  ['POST', /^\/v1\/subscription_schedules\/([^/]+)\/cancel$/, (a, p, [id]) => cancel(a, a.get('subscription_schedule', id), p)],
];
