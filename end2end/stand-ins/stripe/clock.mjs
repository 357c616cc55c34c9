// Time: test clocks, and the engine that does what falls due (trial ends, renewals, invoice
// finalization, payment retries, schedule phases, expiries) in time order, for a clock's
// customers when it advances and, once a second, for everything else by the wall clock.

import { allAccounts } from './accounts.mjs';
import { deleteCustomer } from './catalog.mjs';
import { sessionMoments } from './checkout.mjs';
import { DAY, addInterval, formatDate, int, invalid, list, newId, required, wallNow } from './core.mjs';
import { invoiceMoments } from './invoices.mjs';
import { scheduleMoments } from './schedules.mjs';
import { ENDED, recurringOf, subscriptionMoments } from './subscriptions.mjs';
import { emit, inBatch } from './webhooks.mjs';

const AUTOMATIC = { id: null, idempotency_key: null };
// A clock step that keeps finding work is a bug: stop instead of spinning.
const MAX_STEPS = 100_000;

// The earliest moment due by `until` among the objects `mine` selects. Moments at the same time
// go in `rank` order: 0 schedule phases, 1 cancel at period end, 2 trial ends, renewals and
// expiries, 3 finalizing drafts, 4 payment retries, 5 notices (trial_will_end, upcoming),
// 6 checkout expiry; so a phase changes the items before the renewal bills them.
function nextMoment(account, mine, until) {
  let best = null;
  const consider = (moments) => {
    for (const moment of moments) {
      if (moment.at <= until && (!best || moment.at < best.at || (moment.at === best.at && moment.rank < best.rank))) best = moment;
    }
  };
  for (const schedule of account.all('subscription_schedule')) if (mine(schedule)) consider(scheduleMoments(account, schedule));
  for (const sub of account.all('subscription')) if (mine(sub)) consider(subscriptionMoments(account, sub));
  for (const invoice of account.all('invoice')) if (mine(invoice)) consider(invoiceMoments(account, invoice));
  for (const session of account.all('checkout.session')) if (mine(session)) consider(sessionMoments(account, session));
  return best;
}

function createClock(account, p) {
  const frozen = int(p.frozen_time, 'frozen_time');
  if (frozen === undefined) throw required('frozen_time');
  const now = wallNow();
  const clock = {
    id: newId('clock'),
    object: 'test_helpers.test_clock',
    created: now,
    deletes_after: now + 7 * DAY,
    frozen_time: frozen,
    livemode: false,
    name: p.name || null,
    status: 'ready',
    status_details: {},
  };
  account.put(clock);
  emit(account, 'test_helpers.test_clock.created', clock);
  return clock;
}

// At most two intervals of the clock's shortest subscription ahead (two years without any).
function advanceLimit(account, clock) {
  const limits = account
    .all('subscription')
    .filter((sub) => sub.test_clock === clock.id && !ENDED.includes(sub.status))
    .map((sub) => {
      const { interval, interval_count } = recurringOf(sub);
      return addInterval(clock.frozen_time, interval, 2 * interval_count);
    });
  return limits.length ? Math.min(...limits) : addInterval(clock.frozen_time, 'year', 2);
}

function advance(account, clock, p) {
  const target = int(p.frozen_time, 'frozen_time');
  if (target === undefined) throw required('frozen_time');
  if (clock.status !== 'ready') throw invalid(`The test clock ${clock.id} is ${clock.status}; advance it again once it is ready.`, undefined, 'test_clock_not_ready');
  if (target <= clock.frozen_time) throw invalid(`The test clock can only move forward: frozen_time must be after ${clock.frozen_time}.`, 'frozen_time');
  const limit = advanceLimit(account, clock);
  if (target > limit) {
    throw invalid(
      `Cannot advance the test clock more than two intervals of its shortest subscription (or two years without one): ${limit} (${formatDate(limit)}) at most.`,
      'frozen_time',
    );
  }
  clock.status = 'advancing';
  clock.status_details = { advancing: { target_frozen_time: target } };
  emit(account, 'test_helpers.test_clock.advancing', clock);
  setImmediate(() => step(account, clock, target, 0));
  return clock;
}

// One due moment per turn of the event loop, the clock set to it while it is handled (so every
// timestamp made is right), until none is left before the target.
function step(account, clock, target, steps) {
  if (!account.objects.get('test_helpers.test_clock').has(clock.id)) return;
  const mine = (object) => account.clockOf(object)?.id === clock.id;
  try {
    if (steps >= MAX_STEPS) throw new Error(`still finding work after ${MAX_STEPS} steps`);
    const moment = nextMoment(account, mine, target);
    if (moment) {
      clock.frozen_time = Math.max(clock.frozen_time, moment.at);
      inBatch(account, AUTOMATIC, moment.run);
      setImmediate(() => step(account, clock, target, steps + 1));
      return;
    }
    clock.frozen_time = target;
    clock.status = 'ready';
    clock.status_details = {};
    emit(account, 'test_helpers.test_clock.ready', clock);
  } catch (error) {
    console.error(`stripe stand-in: advancing ${clock.id} failed`, error);
    clock.status = 'internal_failure';
    clock.status_details = {};
    emit(account, 'test_helpers.test_clock.internal_failure', clock);
  }
}

// Deleting a clock deletes its customers (and so ends their subscriptions).
function deleteClock(account, clock) {
  for (const customer of account.all('customer')) if (customer.test_clock === clock.id) deleteCustomer(account, customer);
  emit(account, 'test_helpers.test_clock.deleted', clock);
  return account.remove(clock);
}

// Objects on no clock follow the wall clock.
function sweep() {
  for (const account of allAccounts()) {
    const mine = (object) => account.clockOf(object) === null;
    try {
      for (let steps = 0; steps < 1000; steps++) {
        const moment = nextMoment(account, mine, wallNow());
        if (!moment) break;
        inBatch(account, AUTOMATIC, moment.run);
      }
    } catch (error) {
      console.error('stripe stand-in: wall-clock work failed', error);
    }
  }
}
setInterval(sweep, 1000).unref();

export const routes = [
  ['POST', /^\/v1\/test_helpers\/test_clocks$/, (a, p) => createClock(a, p)],
  ['GET', /^\/v1\/test_helpers\/test_clocks$/, (a, p, _, url) => list(a.all('test_helpers.test_clock'), p, url)],
  ['GET', /^\/v1\/test_helpers\/test_clocks\/([^/]+)$/, (a, p, [id]) => a.deleted.get(id) ?? a.get('test_helpers.test_clock', id, 'test_clock')],
  ['POST', /^\/v1\/test_helpers\/test_clocks\/([^/]+)\/advance$/, (a, p, [id]) => advance(a, a.get('test_helpers.test_clock', id, 'test_clock'), p)],
  ['DELETE', /^\/v1\/test_helpers\/test_clocks\/([^/]+)$/, (a, p, [id]) => deleteClock(a, a.get('test_helpers.test_clock', id, 'test_clock'))],
];
