// Events and their delivery: every change emits an event of the account; each enabled endpoint
// wanting its type gets it POSTed, signed as Stripe signs, from a queue of its own.

import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { array, bool, clone, hidden, int, invalid, list, metadata, newId, oneOf, required, wallNow } from './core.mjs';

const API_VERSION = '2026-09-30.endive';
const RETRY_AFTER_SECONDS = [1, 5, 25];
const TIMEOUT_MS = 10_000;
const KEPT_DELIVERIES = 1000;

// The events of the request or clock step being handled: delivered together once it is done,
// which is what chaos `reorder` reverses.
let batch = null;

export function inBatch(account, request, work) {
  const mine = { account, request, events: [] };
  const outer = batch;
  batch = mine;
  try {
    return work();
  } finally {
    batch = outer;
    dispatch(mine);
  }
}

export function emit(account, type, object, previous) {
  const targets = account
    .all('webhook_endpoint')
    .filter((endpoint) => endpoint.status === 'enabled' && (endpoint.enabled_events.includes('*') || endpoint.enabled_events.includes(type)))
    .map((endpoint) => endpoint.id);
  const event = {
    id: newId('evt'),
    object: 'event',
    api_version: API_VERSION,
    created: account.now(object),
    data: { object: clone(object), ...(previous && { previous_attributes: previous }) },
    livemode: false,
    pending_webhooks: targets.length,
    request: batch?.account === account ? batch.request : { id: null, idempotency_key: null },
    type,
  };
  Object.assign(hidden(event), { targets, unsettled: new Set(targets), whenSettled: [] });
  account.put(event);
  if (batch?.account === account) batch.events.push(event);
  else dispatch({ account, events: [event] });
  return event;
}

// `*.updated` with the previous values of the top-level keys that changed (nothing if none did).
export function emitUpdate(account, type, object, before) {
  const previous = {};
  for (const [key, value] of Object.entries(before)) {
    if (JSON.stringify(value) !== JSON.stringify(object[key])) previous[key] = value;
  }
  return Object.keys(previous).length ? emit(account, type, object, previous) : null;
}

// Runs once every endpoint has the event or was given up on (at once when there are none).
export function whenSettled(event, callback) {
  if (hidden(event).unsettled.size === 0) callback();
  else hidden(event).whenSettled.push(callback);
}

function settle(event, endpointId, delivered) {
  const state = hidden(event);
  if (!state.unsettled.delete(endpointId)) return;
  if (delivered) event.pending_webhooks -= 1;
  if (state.unsettled.size === 0) state.whenSettled.splice(0).forEach((callback) => callback());
}

function dispatch({ account, events }) {
  const order = account.chaos.reorder ? [...events].reverse() : events;
  for (let copy = 0; copy <= account.chaos.duplicate; copy++) {
    for (const event of order) {
      for (const endpointId of hidden(event).targets) enqueue(account, endpointId, { event, attempt: 1, counts: copy === 0 });
    }
  }
}

function enqueue(account, endpointId, job) {
  if (!account.queues.has(endpointId)) account.queues.set(endpointId, { jobs: [], busy: false });
  account.queues.get(endpointId).jobs.push(job);
  pump(account, endpointId);
}

// One delivery at a time per endpoint, in the order events were made; a failed one is retried
// later from the back of the queue, so it doesn't hold the others up (Stripe doesn't either).
async function pump(account, endpointId) {
  const queue = account.queues.get(endpointId);
  if (queue.busy) return;
  queue.busy = true;
  try {
    while (queue.jobs.length) await deliver(account, endpointId, queue.jobs.shift());
  } catch (error) {
    console.error('stripe stand-in: webhook queue failed', error);
  } finally {
    queue.busy = false;
  }
}

async function deliver(account, endpointId, job) {
  const { event, attempt } = job;
  const endpoint = account.objects.get('webhook_endpoint').get(endpointId);
  // A disabled or deleted endpoint stops its retries.
  if (endpoint?.status !== 'enabled') return job.counts && settle(event, endpointId, false);
  const body = JSON.stringify(event);
  // Signed with wall-clock time on every attempt, also under a test clock: receivers check it
  // against their own clock.
  const t = wallNow();
  const signature = createHmac('sha256', hidden(endpoint).secret).update(`${t}.${body}`).digest('hex');
  const outcome = await post(endpoint.url, body, `t=${t},v1=${signature}`);
  account.deliveries.push({ event: event.id, type: event.type, endpoint: endpointId, url: endpoint.url, attempt, status: outcome.status ?? null, error: outcome.error ?? null, at: t });
  account.deliveries.splice(0, account.deliveries.length - KEPT_DELIVERIES);
  if (outcome.status >= 200 && outcome.status < 300) return job.counts && settle(event, endpointId, true);
  if (attempt <= RETRY_AFTER_SECONDS.length) {
    setTimeout(() => enqueue(account, endpointId, { ...job, attempt: attempt + 1 }), RETRY_AFTER_SECONDS[attempt - 1] * 1000);
    return;
  }
  console.error(`stripe stand-in: gave up delivering ${event.id} (${event.type}) to ${endpoint.url} after ${attempt} attempts: ${outcome.error ?? `HTTP ${outcome.status}`}`);
  if (job.counts) settle(event, endpointId, false);
}

function post(url, body, signature) {
  return new Promise((resolve) => {
    const target = new URL(url);
    const request = (target.protocol === 'https:' ? https : http).request(
      target,
      {
        method: 'POST',
        timeout: TIMEOUT_MS,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'stripe-signature': signature,
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode }));
        response.on('error', (error) => resolve({ error: error.message }));
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    request.on('error', (error) => resolve({ error: error.message }));
    request.end(body);
  });
}

// --- Webhook endpoints.

function enabledEvents(value) {
  const events = array(value);
  if (!events.length) throw required('enabled_events');
  if (events.some((type) => typeof type !== 'string' || !/^(\*|[a-z_]+(\.[a-z_]+)+)$/.test(type))) throw invalid('Invalid enabled_events: each must be an event type, or * for all.', 'enabled_events');
  return events;
}

function webhookUrl(value) {
  if (!value) throw required('url');
  let parsed;
  try {
    parsed = new URL(value);
  } catch {
    throw invalid(`Invalid URL: ${value}`, 'url', 'url_invalid');
  }
  if (!['http:', 'https:'].includes(parsed.protocol)) throw invalid(`Invalid URL: ${value} (http or https only)`, 'url', 'url_invalid');
  return value;
}

// A development server's endpoint, made at start-up with a secret the server was given too
// (`cargo xtask dev`), so nothing has to be copied between them.
export function preregister(account, url, secret) {
  const endpoint = createEndpoint(account, { url, enabled_events: ['*'], description: 'cargo xtask dev' });
  hidden(account.get('webhook_endpoint', endpoint.id)).secret = secret;
}

function createEndpoint(account, p) {
  const endpoint = {
    id: newId('we'),
    object: 'webhook_endpoint',
    api_version: p.api_version ?? null,
    application: null,
    created: wallNow(),
    description: p.description || null,
    enabled_events: enabledEvents(p.enabled_events),
    livemode: false,
    metadata: metadata(p.metadata),
    status: 'enabled',
    url: webhookUrl(p.url),
  };
  hidden(endpoint).secret = `whsec_${randomBytes(24).toString('base64url')}`;
  account.put(endpoint);
  // The secret is shown once, on creation, as Stripe does.
  return { ...endpoint, secret: hidden(endpoint).secret };
}

function updateEndpoint(endpoint, p) {
  if (p.url !== undefined) endpoint.url = webhookUrl(p.url);
  if (p.enabled_events !== undefined) endpoint.enabled_events = enabledEvents(p.enabled_events);
  if (p.description !== undefined) endpoint.description = p.description || null;
  if (p.disabled !== undefined) endpoint.status = bool(p.disabled, 'disabled') ? 'disabled' : 'enabled';
  endpoint.metadata = metadata(p.metadata, endpoint.metadata);
  return endpoint;
}

function listEvents(account, p, url) {
  const types = p.type !== undefined ? [p.type] : array(p.types);
  const matches = (type) => !types.length || types.some((wanted) => (wanted.endsWith('.*') ? type.startsWith(wanted.slice(0, -1)) : type === wanted));
  return list(
    account.all('event').filter((event) => matches(event.type)),
    p,
    url,
  );
}

// The stand-in's own controls (not Stripe): chaos in delivery, the dunning outcome, a delivery log.
function setChaos(account, p) {
  const duplicate = int(p.duplicate, 'duplicate', { min: 0 });
  if (duplicate !== undefined) account.chaos.duplicate = Math.min(duplicate, 10);
  if (p.reorder !== undefined) account.chaos.reorder = bool(p.reorder, 'reorder');
  return { ...account.chaos };
}

function setSettings(account, p) {
  const action = oneOf(p.final_retry_action, ['cancel', 'unpaid', 'past_due'], 'final_retry_action');
  if (action) account.settings.final_retry_action = action;
  return { ...account.settings };
}

export const routes = [
  ['POST', /^\/v1\/webhook_endpoints$/, (a, p) => createEndpoint(a, p)],
  ['GET', /^\/v1\/webhook_endpoints$/, (a, p, _, url) => list(a.all('webhook_endpoint'), p, url)],
  ['GET', /^\/v1\/webhook_endpoints\/([^/]+)$/, (a, p, [id]) => a.get('webhook_endpoint', id)],
  ['POST', /^\/v1\/webhook_endpoints\/([^/]+)$/, (a, p, [id]) => updateEndpoint(a.get('webhook_endpoint', id), p)],
  ['DELETE', /^\/v1\/webhook_endpoints\/([^/]+)$/, (a, p, [id]) => a.remove(a.get('webhook_endpoint', id))],
  ['GET', /^\/v1\/events$/, (a, p, _, url) => listEvents(a, p, url)],
  ['GET', /^\/v1\/events\/([^/]+)$/, (a, p, [id]) => a.get('event', id)],
  ['POST', /^\/_standin\/chaos$/, (a, p) => setChaos(a, p)],
  ['POST', /^\/_standin\/settings$/, (a, p) => setSettings(a, p)],
  ['GET', /^\/_standin\/deliveries$/, (a, p, _, url) => ({ object: 'list', data: [...a.deliveries].reverse(), has_more: false, url })],
];
