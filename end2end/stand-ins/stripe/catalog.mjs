// Customers, products, prices (and their legacy `plan` view), billing meters and meter events.

import { randomBytes } from 'node:crypto';
import { attachMethod, attachable } from './cards.mjs';
import { DAY, array, bool, hidden, int, invalid, list, metadata, newId, notFound, oneOf, required, wallNow } from './core.mjs';
import { cancelNow } from './subscriptions.mjs';
import { emit, emitUpdate } from './webhooks.mjs';

// --- Customers.

export function createCustomer(account, p) {
  const clock = p.test_clock ? account.ref('test_helpers.test_clock', p.test_clock, 'test_clock', 'test_clock') : null;
  const defaultMethod = p.invoice_settings?.default_payment_method;
  if (defaultMethod && defaultMethod !== p.payment_method) {
    throw invalid('invoice_settings[default_payment_method] must be a payment method attached to the customer.', 'invoice_settings[default_payment_method]');
  }
  const id = newId('cus', 9);
  // As Stripe allows: `payment_method` (a test id too) attached on creation, and made the default
  // when `invoice_settings[default_payment_method]` names it. A card that can't be attached
  // fails the creation.
  const method = p.payment_method ? attachable(account, p.payment_method, { id }, 'payment_method') : null;
  const customer = {
    id,
    object: 'customer',
    address: null,
    balance: 0,
    created: clock?.frozen_time ?? wallNow(),
    currency: null,
    default_source: null,
    delinquent: false,
    description: p.description || null,
    discount: null,
    email: p.email || null,
    invoice_prefix: randomBytes(4).toString('hex').toUpperCase(),
    invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
    livemode: false,
    metadata: metadata(p.metadata),
    name: p.name || null,
    next_invoice_sequence: 1,
    phone: p.phone || null,
    preferred_locales: array(p.preferred_locales),
    shipping: null,
    tax_exempt: 'none',
    test_clock: clock?.id ?? null,
  };
  if (method && defaultMethod) customer.invoice_settings.default_payment_method = method.id;
  account.put(customer);
  emit(account, 'customer.created', customer);
  if (method) attachMethod(account, method, customer);
  return customer;
}

function updateCustomer(account, customer, p) {
  if (p.test_clock !== undefined) throw invalid('Received unknown parameter: test_clock', 'test_clock');
  const before = structuredClone(customer);
  const methodId = p.invoice_settings?.default_payment_method;
  if (methodId) {
    const method = account.objects.get('payment_method').get(methodId);
    if (method?.customer !== customer.id) {
      throw invalid(`The customer does not have a payment method with the ID ${methodId}. The payment method must be attached to the customer.`, 'invoice_settings[default_payment_method]', 'resource_missing');
    }
  }
  if (p.email !== undefined) customer.email = p.email || null;
  if (p.name !== undefined) customer.name = p.name || null;
  if (p.description !== undefined) customer.description = p.description || null;
  if (p.phone !== undefined) customer.phone = p.phone || null;
  customer.metadata = metadata(p.metadata, customer.metadata);
  if (methodId !== undefined) customer.invoice_settings.default_payment_method = methodId || null;
  emitUpdate(account, 'customer.updated', customer, before);
  return customer;
}

// Deleting a customer ends its subscriptions, as Stripe does.
export function deleteCustomer(account, customer) {
  for (const sub of account.all('subscription')) {
    if (sub.customer === customer.id && !['canceled', 'incomplete_expired'].includes(sub.status)) cancelNow(account, sub, {});
  }
  emit(account, 'customer.deleted', customer);
  return account.remove(customer);
}

function getCustomer(account, id) {
  return account.deleted.get(id)?.object === 'customer' ? account.deleted.get(id) : account.get('customer', id);
}

// Like Stripe, customers on a test clock are listed only when that clock is asked for.
function listCustomers(account, p, url) {
  const customers = account.all('customer').filter((c) => (p.email === undefined || c.email === p.email) && c.test_clock === (p.test_clock ?? null));
  return list(customers, p, url);
}

// --- Products.

function createProduct(account, p) {
  if (!p.name) throw required('name');
  if (p.id && account.objects.get('product').has(p.id)) throw invalid('Product already exists.', 'id', 'resource_already_exists');
  const now = wallNow();
  const product = {
    id: p.id || newId('prod', 9),
    object: 'product',
    active: bool(p.active, 'active') ?? true,
    created: now,
    default_price: null,
    description: p.description || null,
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
    unit_label: p.unit_label || null,
    updated: now,
    url: null,
  };
  account.put(product);
  emit(account, 'product.created', product);
  return product;
}

function updateProduct(account, product, p) {
  const before = structuredClone(product);
  if (p.name !== undefined) product.name = p.name;
  if (p.description !== undefined) product.description = p.description || null;
  if (p.active !== undefined) product.active = bool(p.active, 'active');
  if (p.unit_label !== undefined) product.unit_label = p.unit_label || null;
  product.metadata = metadata(p.metadata, product.metadata);
  product.updated = wallNow();
  emitUpdate(account, 'product.updated', product, before);
  return product;
}

// --- Prices.

// A lookup key names one price at a time; `transfer_lookup_key` moves it to the new one.
function claimLookupKey(account, key, transfer, price) {
  if (!key) return;
  const holder = account.all('price').find((other) => other.lookup_key === key && other.id !== price.id);
  if (holder) {
    if (!transfer) throw invalid(`A price (\`${holder.id}\`) already uses that lookup key.`, 'lookup_key');
    holder.lookup_key = null;
  }
  price.lookup_key = key;
}

function createPrice(account, p) {
  if (!p.currency) throw required('currency');
  if (!p.product) throw required('product');
  account.ref('product', p.product, 'product', 'product');
  const recurring = p.recurring
    ? {
        interval: oneOf(p.recurring.interval, ['day', 'week', 'month', 'year'], 'recurring[interval]'),
        interval_count: int(p.recurring.interval_count, 'recurring[interval_count]', { min: 1 }) ?? 1,
        meter: p.recurring.meter || null,
        trial_period_days: null,
        usage_type: oneOf(p.recurring.usage_type, ['licensed', 'metered'], 'recurring[usage_type]') ?? 'licensed',
      }
    : null;
  if (recurring && !recurring.interval) throw required('recurring[interval]');
  if (recurring?.usage_type === 'metered') {
    if (!recurring.meter) throw invalid('Metered prices need a meter (recurring[meter]).', 'recurring[meter]');
    account.ref('billing.meter', recurring.meter, 'recurring[meter]', 'billing.meter');
  }
  let unitAmount = int(p.unit_amount, 'unit_amount', { min: 0 });
  let decimal = p.unit_amount_decimal;
  if (unitAmount !== undefined && decimal !== undefined) throw invalid('Pass either unit_amount or unit_amount_decimal, not both.', 'unit_amount_decimal');
  if (decimal !== undefined) {
    if (!/^\d+(\.\d{1,12})?$/.test(decimal)) throw invalid(`Invalid decimal: ${decimal}`, 'unit_amount_decimal');
    decimal = decimal.replace(/^0+(?=\d)/, '').replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
    // Whole cents are also given as `unit_amount`; a fraction of a cent leaves it null.
    if (/^\d+$/.test(decimal)) unitAmount = Number(decimal);
  } else if (unitAmount === undefined) {
    throw required('unit_amount');
  }
  const price = {
    id: newId('price'),
    object: 'price',
    active: bool(p.active, 'active') ?? true,
    billing_scheme: 'per_unit',
    created: wallNow(),
    currency: p.currency.toLowerCase(),
    custom_unit_amount: null,
    livemode: false,
    lookup_key: null,
    metadata: metadata(p.metadata),
    nickname: p.nickname || null,
    product: p.product,
    recurring,
    tax_behavior: oneOf(p.tax_behavior, ['exclusive', 'inclusive', 'unspecified'], 'tax_behavior') ?? 'unspecified',
    tiers_mode: null,
    transform_quantity: null,
    type: recurring ? 'recurring' : 'one_time',
    unit_amount: unitAmount ?? null,
    unit_amount_decimal: decimal ?? String(unitAmount),
  };
  claimLookupKey(account, p.lookup_key, bool(p.transfer_lookup_key, 'transfer_lookup_key'), price);
  account.put(price);
  emit(account, 'price.created', price);
  return price;
}

function updatePrice(account, price, p) {
  for (const fixed of ['unit_amount', 'unit_amount_decimal', 'currency', 'recurring', 'product']) {
    if (p[fixed] !== undefined) throw invalid(`Received unknown parameter: ${fixed}`, fixed);
  }
  const before = structuredClone(price);
  if (p.active !== undefined) price.active = bool(p.active, 'active');
  if (p.nickname !== undefined) price.nickname = p.nickname || null;
  if (p.lookup_key !== undefined) {
    if (p.lookup_key === '') price.lookup_key = null;
    else claimLookupKey(account, p.lookup_key, bool(p.transfer_lookup_key, 'transfer_lookup_key'), price);
  }
  price.metadata = metadata(p.metadata, price.metadata);
  emitUpdate(account, 'price.updated', price, before);
  return price;
}

function listPrices(account, p, url) {
  const keys = p.lookup_keys === undefined ? null : array(p.lookup_keys);
  const active = bool(p.active, 'active');
  const prices = account
    .all('price')
    .filter((x) => (!keys || keys.includes(x.lookup_key)) && (p.product === undefined || x.product === p.product) && (active === undefined || x.active === active));
  return list(prices, p, url);
}

// The legacy view of a recurring price that subscription items still carry.
export function planOf(price) {
  return {
    id: price.id,
    object: 'plan',
    active: price.active,
    amount: price.unit_amount,
    amount_decimal: price.unit_amount_decimal,
    billing_scheme: price.billing_scheme,
    created: price.created,
    currency: price.currency,
    interval: price.recurring.interval,
    interval_count: price.recurring.interval_count,
    livemode: false,
    metadata: price.metadata,
    meter: price.recurring.meter,
    nickname: price.nickname,
    product: price.product,
    tiers_mode: null,
    transform_usage: null,
    trial_period_days: price.recurring.trial_period_days,
    usage_type: price.recurring.usage_type,
  };
}

function getPlan(account, id) {
  const price = account.objects.get('price').get(id);
  if (!price?.recurring) throw notFound('plan', id);
  return planOf(price);
}

// round(quantity × unit_amount_decimal), exactly: both are decimals, so integers scaled by 10^12.
export function amountFor(price, quantity) {
  const scaled = (value) => {
    const [whole, fraction = ''] = String(value).split('.');
    return BigInt(whole + fraction.padEnd(12, '0').slice(0, 12));
  };
  const product = scaled(price.unit_amount_decimal) * scaled(quantity);
  const unit = 10n ** 24n;
  return Number((product + unit / 2n) / unit);
}

// --- Meters and their events.

function createMeter(account, p) {
  if (!p.display_name) throw required('display_name');
  if (!p.event_name) throw required('event_name');
  if (!p.default_aggregation?.formula) throw required('default_aggregation[formula]');
  if (account.all('billing.meter').some((m) => m.status === 'active' && m.event_name === p.event_name)) {
    throw invalid(`An active meter with event_name '${p.event_name}' already exists.`, 'event_name');
  }
  const now = wallNow();
  const meter = {
    id: newId('mtr', 16),
    object: 'billing.meter',
    created: now,
    customer_mapping: {
      event_payload_key: p.customer_mapping?.event_payload_key || 'stripe_customer_id',
      type: oneOf(p.customer_mapping?.type, ['by_id'], 'customer_mapping[type]') ?? 'by_id',
    },
    default_aggregation: { formula: oneOf(p.default_aggregation.formula, ['sum', 'count', 'last'], 'default_aggregation[formula]') },
    display_name: p.display_name,
    event_name: p.event_name,
    event_time_window: null,
    livemode: false,
    status: 'active',
    status_transitions: { deactivated_at: null },
    updated: now,
    value_settings: { event_payload_key: p.value_settings?.event_payload_key || 'value' },
  };
  account.put(meter);
  return meter;
}

function updateMeter(meter, p) {
  for (const fixed of ['event_name', 'default_aggregation', 'customer_mapping', 'value_settings']) {
    if (p[fixed] !== undefined) throw invalid(`Received unknown parameter: ${fixed} (only display_name can change)`, fixed);
  }
  if (p.display_name) meter.display_name = p.display_name;
  meter.updated = wallNow();
  return meter;
}

const IDENTIFIER_WINDOW = DAY;

function createMeterEvent(account, p) {
  if (!p.event_name) throw required('event_name');
  if (!p.payload || typeof p.payload !== 'object') throw required('payload');
  const meter = account.all('billing.meter').find((m) => m.status === 'active' && m.event_name === p.event_name);
  if (!meter) throw invalid(`No active meter was found for event_name '${p.event_name}'.`, 'event_name');
  const customerKey = meter.customer_mapping.event_payload_key;
  const customerId = p.payload[customerKey];
  if (!customerId) throw invalid(`The payload needs ${customerKey} (the meter's customer mapping).`, `payload[${customerKey}]`);
  account.ref('customer', customerId, `payload[${customerKey}]`, 'customer');
  const valueKey = meter.value_settings.event_payload_key;
  const value = p.payload[valueKey] ?? '1';
  if (!/^-?\d+(\.\d+)?$/.test(value)) throw invalid(`Invalid ${valueKey}: must be a number, as a string`, `payload[${valueKey}]`);
  // Usage of a customer on a test clock happens at the clock's time.
  const now = account.now({ customer: customerId });
  const timestamp = int(p.timestamp, 'timestamp') ?? now;
  if (timestamp < now - 35 * DAY || timestamp > now + 300) {
    throw invalid('The timestamp must be within the past 35 days and at most 5 minutes in the future.', 'timestamp');
  }
  const identifier = p.identifier || newId('mev', 12);
  const seen = account.meterIdentifiers.get(identifier);
  if (seen !== undefined && wallNow() - seen < IDENTIFIER_WINDOW) {
    throw invalid(`A meter event with identifier '${identifier}' was already received in the past 24 hours.`, 'identifier');
  }
  account.meterIdentifiers.set(identifier, wallNow());
  const event = { object: 'billing.meter_event', created: now, event_name: p.event_name, identifier, livemode: false, payload: { ...p.payload }, timestamp };
  hidden(event).usage = { meter: meter.id, customer: customerId, value: Number(value) };
  account.meterEvents.push(event);
  return event;
}

// The meter's aggregate for a customer over [start, end).
export function usage(account, meterId, customerId, start, end) {
  const meter = account.objects.get('billing.meter').get(meterId);
  const events = account.meterEvents
    .filter((e) => hidden(e).usage.meter === meterId && hidden(e).usage.customer === customerId && e.timestamp >= start && e.timestamp < end)
    .sort((a, b) => a.timestamp - b.timestamp);
  const values = events.map((e) => hidden(e).usage.value);
  switch (meter?.default_aggregation.formula) {
    case 'count':
      return values.length;
    case 'last':
      return values.at(-1) ?? 0;
    default:
      return values.reduce((sum, v) => sum + v, 0);
  }
}

export const routes = [
  ['POST', /^\/v1\/customers$/, (a, p) => createCustomer(a, p)],
  ['GET', /^\/v1\/customers$/, (a, p, _, url) => listCustomers(a, p, url)],
  ['GET', /^\/v1\/customers\/([^/]+)$/, (a, p, [id]) => getCustomer(a, id)],
  ['POST', /^\/v1\/customers\/([^/]+)$/, (a, p, [id]) => updateCustomer(a, a.get('customer', id), p)],
  ['DELETE', /^\/v1\/customers\/([^/]+)$/, (a, p, [id]) => deleteCustomer(a, a.get('customer', id))],
  ['POST', /^\/v1\/products$/, (a, p) => createProduct(a, p)],
  ['GET', /^\/v1\/products$/, (a, p, _, url) => list(a.all('product').filter((x) => p.active === undefined || x.active === bool(p.active, 'active')), p, url)],
  ['GET', /^\/v1\/products\/([^/]+)$/, (a, p, [id]) => a.get('product', id)],
  ['POST', /^\/v1\/products\/([^/]+)$/, (a, p, [id]) => updateProduct(a, a.get('product', id), p)],
  ['POST', /^\/v1\/prices$/, (a, p) => createPrice(a, p)],
  ['GET', /^\/v1\/prices$/, (a, p, _, url) => listPrices(a, p, url)],
  ['GET', /^\/v1\/prices\/([^/]+)$/, (a, p, [id]) => a.get('price', id)],
  ['POST', /^\/v1\/prices\/([^/]+)$/, (a, p, [id]) => updatePrice(a, a.get('price', id), p)],
  ['GET', /^\/v1\/plans\/([^/]+)$/, (a, p, [id]) => getPlan(a, id)],
  ['POST', /^\/v1\/billing\/meters$/, (a, p) => createMeter(a, p)],
  ['GET', /^\/v1\/billing\/meters$/, (a, p, _, url) => list(a.all('billing.meter'), p, url)],
  ['GET', /^\/v1\/billing\/meters\/([^/]+)$/, (a, p, [id]) => a.get('billing.meter', id)],
  ['POST', /^\/v1\/billing\/meters\/([^/]+)$/, (a, p, [id]) => updateMeter(a.get('billing.meter', id), p)],
  ['POST', /^\/v1\/billing\/meter_events$/, (a, p) => createMeterEvent(a, p)],
];
