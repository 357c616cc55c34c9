// A local, stateful stand-in for the parts of Stripe's API Tessera uses, so billing is tested
// end to end without the network. Objects have the shape of the current API version
// (2026-09-30.endive): every top-level key of Stripe's own example objects
// (`../shared/data/stripe-openapi/fixtures3.json`; `server/tests/stripe_contract.rs` checks it),
// so a client can't come to depend on a shape real Stripe doesn't send. Behaviour follows
// `../shared/data/stripe-behaviour.md`. The modules are in `stripe/`:
//
//   accounts.mjs       one account per secret key (objects, events, endpoints, settings)
//   catalog.mjs        customers, products, prices (+ plan view), billing meters, meter events
//   cards.mjs          payment methods, Stripe's test cards, setup intents
//   subscriptions.mjs  subscriptions and items, prorations, statuses, renewals, previews
//   schedules.mjs      subscription schedules (changes at the end of a period)
//   invoices.mjs       invoices, lines, pending invoice items, payment, retries (dunning)
//   clock.mjs          test clocks and the engine that runs what falls due, in time order
//   checkout.mjs       checkout sessions and their hosted card form
//   pages.mjs          the HTML/PDF pages (checkout form, hosted invoice)
//   webhooks.mjs       events, webhook endpoints, signed delivery with retries, chaos controls
//   core.mjs           errors, form decoding, parameters, lists, ids, calendar arithmetic
//
// API (`Authorization: Bearer sk_test_…`; each key is an account of its own):
//   /v1/customers                  POST, GET (email, test_clock); /:id GET POST DELETE;
//                                  /:id/payment_methods GET
//   /v1/products, /v1/prices       POST, GET (lookup_keys[], product, active); /:id GET POST;
//                                  /v1/plans/:id GET
//   /v1/payment_methods            GET ?customer; /:id GET; /:id/attach (pm_card_… test ids too);
//                                  /:id/detach
//   /v1/setup_intents              GET ?customer; /:id GET
//   /v1/subscriptions              POST, GET (customer, status, price); /:id GET POST DELETE;
//                                  /:id/resume; /v1/subscription_items GET ?subscription, /:id GET
//   /v1/subscription_schedules     POST (from_subscription), GET; /:id GET POST; /release; /cancel
//   /v1/invoices                   GET (customer, subscription, status); /:id GET; /:id/lines;
//                                  /:id/pay, /void, /finalize, /mark_uncollectible;
//                                  /create_preview POST; /v1/invoiceitems GET, /:id GET
//   /v1/billing/meters             POST, GET; /:id GET POST; /v1/billing/meter_events POST
//   /v1/checkout/sessions          POST (subscription, setup), GET (customer, status); /:id GET; /:id/expire
//   /v1/webhook_endpoints          POST, GET; /:id GET POST DELETE
//   /v1/events                     GET (type, types[]); /:id GET
//   /v1/test_helpers/test_clocks   POST, GET; /:id GET DELETE; /:id/advance
// Pages (no key): /checkout/:session (GET form, POST card_number, expiry, cvc, name),
//   /invoice/:id (hosted invoice), /invoice/:id/pdf.
// Stand-in only (same key): POST /_standin/chaos {duplicate, reorder}, POST /_standin/settings
//   {final_retry_action: cancel|unpaid|past_due}, GET /_standin/deliveries.
//
// Time: objects of a customer on a test clock live by its frozen_time (advancing it runs all that
// falls due, in time order: trial ends, renewals, finalizing, retries, schedule phases); all else
// by the wall clock. Every event goes to each enabled endpoint wanting its type, signed
// `t=<wall-clock time>,v1=<HMAC-SHA256>`, retried after 1, 5 and 25 s.
//
// As Stripe does: bodies are form-encoded with brackets (`metadata[plan]=team`,
// `items[0][price]=…`, `expand[]=latest_invoice`); `Idempotency-Key` replays the first answer
// (with `Idempotent-Replayed: true`) and refuses the same key with other parameters (400
// `idempotency_error`); errors are `{"error": {"type", "message", "param"?, "code"?,
// "decline_code"?}}`, card errors 402 `card_error`. A bug answers 500 `api_error` and is logged.
//
// Environment: STRIPE_PORT (required; 127.0.0.1 only). For a development server, also
// STRIPE_DEV_KEY, STRIPE_DEV_WEBHOOK_URL and STRIPE_DEV_WEBHOOK_SECRET: that account starts with
// an endpoint at that URL signing with that secret. Stops on SIGTERM or SIGINT.

import { createServer } from 'node:http';
import process from 'node:process';
import { accountFor, expand, owner } from './stripe/accounts.mjs';
import { routes as cardRoutes } from './stripe/cards.mjs';
import { routes as catalogRoutes } from './stripe/catalog.mjs';
import { checkoutPage, routes as checkoutRoutes } from './stripe/checkout.mjs';
import { routes as clockRoutes } from './stripe/clock.mjs';
import { StripeError, array, decodeForm, invalid, newId, site, stringLeaves } from './stripe/core.mjs';
import { routes as invoiceRoutes } from './stripe/invoices.mjs';
import { invoiceHtml, invoicePdf } from './stripe/pages.mjs';
import { routes as scheduleRoutes } from './stripe/schedules.mjs';
import { routes as subscriptionRoutes } from './stripe/subscriptions.mjs';
import { inBatch, preregister, routes as webhookRoutes } from './stripe/webhooks.mjs';

const port = Number.parseInt(process.env.STRIPE_PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('stripe stand-in: STRIPE_PORT must be set to a TCP port number');
  process.exit(2);
}
site.origin = `http://127.0.0.1:${port}`;

const routes = [...catalogRoutes, ...cardRoutes, ...subscriptionRoutes, ...scheduleRoutes, ...invoiceRoutes, ...checkoutRoutes, ...clockRoutes, ...webhookRoutes];

function send(response, status, body, headers = {}) {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

function readParams(request, url, raw) {
  const query = decodeForm(url.search.slice(1));
  if (!raw) return query;
  if ((request.headers['content-type'] ?? '').startsWith('application/json')) {
    try {
      return { ...query, ...stringLeaves(JSON.parse(raw)) };
    } catch {
      throw invalid('Invalid JSON body.');
    }
  }
  return { ...query, ...decodeForm(raw) };
}

function api(request, response, url, raw) {
  const requestId = newId('req', 10);
  const headers = { 'request-id': requestId };
  try {
    const key = (request.headers.authorization ?? '').match(/^Bearer (sk_test_\w+)$/)?.[1];
    if (!key) throw new StripeError(401, 'invalid_request_error', 'Invalid API Key provided. Use a test secret key (sk_test_…).');
    const account = accountFor(key);
    const route = routes.find(([method, pattern]) => method === request.method && pattern.test(url.pathname));
    if (!route) throw new StripeError(404, 'invalid_request_error', `Unrecognized request URL (${request.method}: ${url.pathname}).`);
    const params = readParams(request, url, raw);
    const idempotencyKey = request.method === 'POST' ? (request.headers['idempotency-key'] ?? null) : null;
    const fingerprint = `${request.method} ${url.pathname} ${raw}`;
    if (idempotencyKey) {
      const seen = account.idempotency.get(idempotencyKey);
      if (seen && seen.fingerprint !== fingerprint) {
        throw new StripeError(400, 'idempotency_error', 'Keys for idempotent requests can only be used with the same parameters they were first used with.');
      }
      if (seen) return send(response, seen.status, seen.body, { ...headers, 'idempotent-replayed': 'true' });
    }
    // What a request did is saved for its key once it ran (also a card decline); a request
    // refused before doing anything is not.
    const remember = (status, body) => idempotencyKey && account.idempotency.set(idempotencyKey, { fingerprint, status, body: structuredClone(body) });
    try {
      const result = inBatch(account, { id: requestId, idempotency_key: idempotencyKey }, () => route[2](account, params, url.pathname.match(route[1]).slice(1), url.pathname));
      const body = expand(account, result, array(params.expand));
      remember(200, body);
      send(response, 200, body, headers);
    } catch (error) {
      if (error instanceof StripeError && error.status === 402) remember(402, error.body);
      throw error;
    }
  } catch (error) {
    if (error instanceof StripeError) return send(response, error.status, error.body, headers);
    console.error('stripe stand-in: request failed', request.method, url.pathname, error);
    send(response, 500, { error: { type: 'api_error', message: 'The stand-in failed; see its log.' } }, headers);
  }
}

// The pages people open: checkout, hosted invoices.
function pages(request, response, url, raw) {
  const checkout = url.pathname.match(/^\/checkout\/([^/]+)$/);
  if (checkout && ['GET', 'POST'].includes(request.method)) {
    const answer = checkoutPage(request.method, checkout[1], request.method === 'POST' ? decodeForm(raw) : null);
    if (answer.redirect) {
      response.writeHead(303, { location: answer.redirect });
      return response.end();
    }
    response.writeHead(answer.status, { 'content-type': 'text/html; charset=utf-8' });
    return response.end(answer.html);
  }
  const invoicePage = url.pathname.match(/^\/invoice\/([^/]+?)(\/pdf)?$/);
  const [, invoice] = invoicePage && request.method === 'GET' ? owner('invoice', invoicePage[1]) : [];
  if (!invoice) {
    response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    return response.end('Not found');
  }
  if (invoicePage[2]) {
    response.writeHead(200, { 'content-type': 'application/pdf', 'content-disposition': `inline; filename="${invoice.number ?? invoice.id}.pdf"` });
    return response.end(invoicePdf(invoice));
  }
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  return response.end(invoiceHtml(invoice));
}

const server = createServer((request, response) => {
  let raw = '';
  request.setEncoding('utf8');
  request.on('data', (chunk) => {
    raw += chunk;
  });
  request.on('end', () => {
    const url = new URL(request.url, site.origin);
    try {
      if (url.pathname.startsWith('/v1/') || url.pathname.startsWith('/_standin/')) api(request, response, url, raw);
      else pages(request, response, url, raw);
    } catch (error) {
      // A form that doesn't decode is the sender's mistake; anything else is a bug.
      const malformed = error instanceof StripeError;
      if (!malformed) console.error('stripe stand-in: page failed', request.method, url.pathname, error);
      if (!response.headersSent) response.writeHead(malformed ? 400 : 500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(malformed ? error.message : 'The stand-in failed; see its log.');
    }
  });
});

// Work done outside a request (clock steps, deliveries) must never take the stand-in down.
process.on('uncaughtException', (error) => console.error('stripe stand-in: unexpected error', error));

const dev = ['STRIPE_DEV_KEY', 'STRIPE_DEV_WEBHOOK_URL', 'STRIPE_DEV_WEBHOOK_SECRET'].map((name) => process.env[name]);
if (dev.every(Boolean)) preregister(accountFor(dev[0]), dev[1], dev[2]);

server.listen(port, '127.0.0.1', () => console.log(`stripe stand-in listening on ${site.origin}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
