// A local, stateful stand-in for the parts of Stripe's API Tessera uses, so billing is tested
// end to end without the network. Objects have the shape of the current API version: every
// top-level key of Stripe's own example objects (`../shared/data/stripe-openapi/fixtures3.json`;
// `server/tests/stripe_contract.rs` checks it), so a client can't come to depend on a shape real
// Stripe doesn't send.
//
// Built so far (billing grows it; see issue "Billing"):
//   POST/GET        /v1/customers, /v1/customers/:id (create with test_clock, update, retrieve)
//   POST/GET        /v1/products, /v1/products/:id (create, update, retrieve, list)
//   POST/GET        /v1/prices, /v1/prices/:id (create with lookup_key / transfer_lookup_key,
//                   update, retrieve, list by lookup_keys[] / product / active)
//   POST/GET        /v1/test_helpers/test_clocks, /v1/test_helpers/test_clocks/:id
//
// As Stripe does: bodies are form-encoded with brackets (`metadata[plan]=team`,
// `recurring[interval]=month`, `lookup_keys[]=a`); `Authorization: Bearer sk_test_…` is
// required; `Idempotency-Key` replays the first response (with `Idempotent-Replayed: true`) and
// refuses the same key with other parameters (400 `idempotency_error`); errors are
// `{"error": {"type", "message", "param"?, "code"?}}`.
//
// Environment: STRIPE_PORT (required; 127.0.0.1 only). Stops on SIGTERM or SIGINT.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import process from 'node:process';

const port = Number.parseInt(process.env.STRIPE_PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('stripe stand-in: STRIPE_PORT must be set to a TCP port number');
  process.exit(2);
}

const store = {
  customer: new Map(),
  product: new Map(),
  price: new Map(),
  'test_helpers.test_clock': new Map(),
};
// key -> { fingerprint, status, body }
const idempotency = new Map();

const now = () => Math.floor(Date.now() / 1000);
const newId = (prefix) => `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;

class StripeError extends Error {
  constructor(status, type, message, param, code) {
    super(message);
    Object.assign(this, { status, type, param, code });
  }
}
const invalid = (message, param) => new StripeError(400, 'invalid_request_error', message, param);
const missing = (kind, id) => new StripeError(404, 'invalid_request_error', `No such ${kind}: '${id}'`, 'id', 'resource_missing');

// `a[b][0][c]=v` and `a[]=v` into nested objects and arrays, as Stripe reads them.
function decodeForm(text) {
  const root = {};
  for (const pair of text.split('&').filter(Boolean)) {
    const [rawKey, rawValue = ''] = pair.split('=');
    const key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
    const value = decodeURIComponent(rawValue.replace(/\+/g, ' '));
    const path = key.match(/^[^[]+|\[[^\]]*\]/g)?.map((part) => part.replace(/^\[|\]$/g, '')) ?? [key];
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
      if (last) {
        node[part] = value;
      } else {
        node[part] ??= nextIsIndex ? [] : {};
        node = node[part];
      }
    });
  }
  return root;
}

const int = (value, param) => {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(String(value))) throw invalid(`Invalid integer: ${value}`, param);
  return Number.parseInt(value, 10);
};
const bool = (value) => (value === undefined ? undefined : value === 'true');
const metadata = (given, current = {}) => {
  if (given === undefined) return current;
  if (given === '') return {};
  const merged = { ...current };
  for (const [k, v] of Object.entries(given)) {
    if (v === '') delete merged[k];
    else merged[k] = v;
  }
  return merged;
};

function get(kind, id, label = kind) {
  const object = store[kind].get(id);
  if (!object) throw missing(label, id);
  return object;
}

function list(objects, params, url) {
  const limit = Math.min(int(params.limit, 'limit') ?? 10, 100);
  const data = objects.sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : -1));
  return { object: 'list', data: data.slice(0, limit), has_more: data.length > limit, url };
}

// --- Objects, with every key Stripe's example objects have.

function createCustomer(p) {
  let clock = null;
  if (p.test_clock) clock = get('test_helpers.test_clock', p.test_clock, 'test_clock').id;
  const customer = {
    id: newId('cus'),
    object: 'customer',
    address: null,
    balance: 0,
    created: now(),
    currency: null,
    default_source: null,
    delinquent: false,
    description: p.description ?? null,
    discount: null,
    email: p.email ?? null,
    invoice_prefix: randomBytes(4).toString('hex').toUpperCase(),
    invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
    livemode: false,
    metadata: metadata(p.metadata),
    name: p.name ?? null,
    next_invoice_sequence: 1,
    phone: null,
    preferred_locales: [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: clock,
  };
  store.customer.set(customer.id, customer);
  return customer;
}

function updateCustomer(customer, p) {
  if (p.test_clock !== undefined) throw invalid('Received unknown parameter: test_clock', 'test_clock');
  if (p.email !== undefined) customer.email = p.email || null;
  if (p.name !== undefined) customer.name = p.name || null;
  if (p.description !== undefined) customer.description = p.description || null;
  customer.metadata = metadata(p.metadata, customer.metadata);
  if (p.invoice_settings?.default_payment_method !== undefined) {
    customer.invoice_settings.default_payment_method = p.invoice_settings.default_payment_method || null;
  }
  return customer;
}

function createProduct(p) {
  if (!p.name) throw invalid('Missing required param: name.', 'name');
  const product = {
    id: p.id ?? newId('prod'),
    object: 'product',
    active: bool(p.active) ?? true,
    created: now(),
    default_price: null,
    description: p.description ?? null,
    images: [],
    livemode: false,
    marketing_features: [],
    metadata: metadata(p.metadata),
    name: p.name,
    package_dimensions: null,
    shippable: null,
    statement_descriptor: null,
    tax_code: null,
    type: 'service',
    unit_label: p.unit_label ?? null,
    updated: now(),
    url: null,
  };
  if (store.product.has(product.id)) throw invalid(`Product already exists.`, 'id');
  store.product.set(product.id, product);
  return product;
}

function updateProduct(product, p) {
  if (p.name !== undefined) product.name = p.name;
  if (p.description !== undefined) product.description = p.description || null;
  if (p.active !== undefined) product.active = bool(p.active);
  product.metadata = metadata(p.metadata, product.metadata);
  product.updated = now();
  return product;
}

// A lookup key names one price at a time; `transfer_lookup_key` moves it to the new one.
function claimLookupKey(key, transfer, price) {
  if (!key) return;
  const holder = [...store.price.values()].find((other) => other.lookup_key === key && other.id !== price.id);
  if (holder) {
    if (!transfer) throw invalid(`A price (\`${holder.id}\`) already uses that lookup key.`, 'lookup_key');
    holder.lookup_key = null;
  }
  price.lookup_key = key;
}

function createPrice(p) {
  if (!p.currency) throw invalid('Missing required param: currency.', 'currency');
  if (!p.product) throw invalid('Missing required param: product.', 'product');
  get('product', p.product);
  const recurring = p.recurring
    ? {
        interval: p.recurring.interval,
        interval_count: int(p.recurring.interval_count, 'recurring[interval_count]') ?? 1,
        meter: p.recurring.meter ?? null,
        trial_period_days: null,
        usage_type: p.recurring.usage_type ?? 'licensed',
      }
    : null;
  if (recurring && !['day', 'week', 'month', 'year'].includes(recurring.interval)) {
    throw invalid('Invalid recurring[interval]: must be one of day, week, month, or year', 'recurring[interval]');
  }
  if (recurring?.usage_type === 'metered' && !recurring.meter) {
    throw invalid('Metered prices need a meter (recurring[meter]).', 'recurring[meter]');
  }
  const unitAmount = int(p.unit_amount, 'unit_amount');
  if (unitAmount === undefined && p.unit_amount_decimal === undefined) throw invalid('Missing required param: unit_amount.', 'unit_amount');
  const price = {
    id: newId('price'),
    object: 'price',
    active: bool(p.active) ?? true,
    billing_scheme: 'per_unit',
    created: now(),
    currency: p.currency.toLowerCase(),
    custom_unit_amount: null,
    livemode: false,
    lookup_key: null,
    metadata: metadata(p.metadata),
    nickname: p.nickname ?? null,
    product: p.product,
    recurring,
    tax_behavior: p.tax_behavior ?? 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: recurring ? 'recurring' : 'one_time',
    unit_amount: unitAmount ?? null,
    unit_amount_decimal: p.unit_amount_decimal ?? (unitAmount === undefined ? null : String(unitAmount)),
  };
  claimLookupKey(p.lookup_key, bool(p.transfer_lookup_key), price);
  store.price.set(price.id, price);
  return price;
}

function updatePrice(price, p) {
  for (const fixed of ['unit_amount', 'currency', 'recurring', 'product']) {
    if (p[fixed] !== undefined) throw invalid(`Received unknown parameter: ${fixed}`, fixed);
  }
  if (p.active !== undefined) price.active = bool(p.active);
  if (p.nickname !== undefined) price.nickname = p.nickname || null;
  if (p.lookup_key !== undefined) {
    if (p.lookup_key === '') price.lookup_key = null;
    else claimLookupKey(p.lookup_key, bool(p.transfer_lookup_key), price);
  }
  price.metadata = metadata(p.metadata, price.metadata);
  return price;
}

function createTestClock(p) {
  const frozen = int(p.frozen_time, 'frozen_time');
  if (frozen === undefined) throw invalid('Missing required param: frozen_time.', 'frozen_time');
  const clock = {
    id: newId('clock'),
    object: 'test_helpers.test_clock',
    created: now(),
    deletes_after: now() + 7 * 86400,
    frozen_time: frozen,
    livemode: false,
    name: p.name ?? null,
    status: 'ready',
    status_details: {},
  };
  store['test_helpers.test_clock'].set(clock.id, clock);
  return clock;
}

// --- Routing.

const routes = [
  ['POST', /^\/v1\/customers$/, (p) => createCustomer(p)],
  ['GET', /^\/v1\/customers\/([^/]+)$/, (p, [id]) => get('customer', id)],
  ['POST', /^\/v1\/customers\/([^/]+)$/, (p, [id]) => updateCustomer(get('customer', id), p)],
  ['POST', /^\/v1\/products$/, (p) => createProduct(p)],
  ['GET', /^\/v1\/products$/, (p, _, url) => list([...store.product.values()].filter((x) => p.active === undefined || x.active === bool(p.active)), p, url)],
  ['GET', /^\/v1\/products\/([^/]+)$/, (p, [id]) => get('product', id)],
  ['POST', /^\/v1\/products\/([^/]+)$/, (p, [id]) => updateProduct(get('product', id), p)],
  ['POST', /^\/v1\/prices$/, (p) => createPrice(p)],
  [
    'GET',
    /^\/v1\/prices$/,
    (p, _, url) => {
      const keys = p.lookup_keys ? [].concat(p.lookup_keys) : null;
      const prices = [...store.price.values()].filter(
        (x) => (!keys || keys.includes(x.lookup_key)) && (p.product === undefined || x.product === p.product) && (p.active === undefined || x.active === bool(p.active)),
      );
      return list(prices, p, url);
    },
  ],
  ['GET', /^\/v1\/prices\/([^/]+)$/, (p, [id]) => get('price', id)],
  ['POST', /^\/v1\/prices\/([^/]+)$/, (p, [id]) => updatePrice(get('price', id), p)],
  ['POST', /^\/v1\/test_helpers\/test_clocks$/, (p) => createTestClock(p)],
  ['GET', /^\/v1\/test_helpers\/test_clocks\/([^/]+)$/, (p, [id]) => get('test_helpers.test_clock', id, 'test_clock')],
];

function send(response, status, body, headers = {}) {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'request-id': newId('req'), ...headers });
  response.end(text);
}

const server = createServer((request, response) => {
  let raw = '';
  request.setEncoding('utf8');
  request.on('data', (chunk) => {
    raw += chunk;
  });
  request.on('end', () => {
    const url = new URL(request.url, `http://127.0.0.1:${port}`);
    try {
      if (!/^Bearer sk_test_\w+$/.test(request.headers.authorization ?? '')) {
        throw new StripeError(401, 'invalid_request_error', 'Invalid API Key provided. Use a test secret key (sk_test_…).');
      }
      const route = routes.find(([method, pattern]) => method === request.method && pattern.test(url.pathname));
      if (!route) throw new StripeError(404, 'invalid_request_error', `Unrecognized request URL (${request.method}: ${url.pathname}).`);
      const params = request.method === 'GET' ? decodeForm(url.search.slice(1)) : decodeForm(raw);
      const key = request.method === 'POST' ? request.headers['idempotency-key'] : undefined;
      const fingerprint = `${request.method} ${url.pathname} ${raw}`;
      if (key) {
        const seen = idempotency.get(key);
        if (seen && seen.fingerprint !== fingerprint) {
          throw new StripeError(400, 'idempotency_error', 'Keys for idempotent requests can only be used with the same parameters they were first used with.');
        }
        if (seen) return send(response, seen.status, seen.body, { 'idempotent-replayed': 'true' });
      }
      const body = route[2](params, url.pathname.match(route[1]).slice(1), url.pathname);
      if (key) idempotency.set(key, { fingerprint, status: 200, body: structuredClone(body) });
      send(response, 200, body);
    } catch (error) {
      if (!(error instanceof StripeError)) {
        console.error(error);
        return send(response, 500, { error: { type: 'api_error', message: 'The stand-in failed; see its log.' } });
      }
      const { status, type, message, param, code } = error;
      send(response, status, { error: { type, message, ...(param && { param }), ...(code && { code }) } });
    }
  });
});

server.listen(port, '127.0.0.1', () => console.log(`stripe stand-in listening on http://127.0.0.1:${port}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
