// Payment methods (cards only), Stripe's test cards and what charging each does, setup intents.

import { createHash, randomBytes } from 'node:crypto';
import { cardError, hidden, invalid, list, newId, required, wallNow } from './core.mjs';
import { emit, emitUpdate } from './webhooks.mjs';

// Stripe's test cards the stand-in knows, by number, and what a charge does with each.
export const TEST_CARDS = {
  '4242424242424242': 'succeeds',
  '4000000000000341': 'charge_fails', // attaches; every charge is declined
  '4000000000009995': 'insufficient_funds', // declined, so it can't even be attached
  '4000002760003184': 'authentication_required', // succeeds on-session only
};
const TEST_IDS = {
  pm_card_visa: '4242424242424242',
  pm_card_chargeCustomerFail: '4000000000000341',
  pm_card_visa_chargeDeclinedInsufficientFunds: '4000000000009995',
  pm_card_authenticationRequired: '4000002760003184',
};

const DECLINES = {
  charge_fails: { message: 'Your card was declined.', code: 'card_declined', decline_code: 'generic_decline' },
  insufficient_funds: { message: 'Your card has insufficient funds.', code: 'card_declined', decline_code: 'insufficient_funds' },
  authentication_required: {
    message: 'Your card was declined. This transaction requires authentication.',
    code: 'authentication_required',
    decline_code: 'authentication_required',
    actionRequired: true,
  },
};

// A card payment method, not yet attached.
export function cardMethod(account, number, { exp_month, exp_year, name = null } = {}) {
  const today = new Date();
  const method = {
    id: newId('pm'),
    object: 'payment_method',
    allow_redisplay: 'unspecified',
    billing_details: {
      address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null },
      email: null,
      name,
      phone: null,
      tax_id: null,
    },
    card: {
      brand: 'visa',
      checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'pass' },
      country: 'US',
      display_brand: 'visa',
      exp_month: exp_month ?? today.getUTCMonth() + 1,
      exp_year: exp_year ?? today.getUTCFullYear() + 3,
      // Stable per card number within an account, as Stripe's are.
      fingerprint: createHash('sha256').update(`${account.key}:${number}`).digest('base64url').replace(/[-_]/g, 'x').slice(0, 16),
      funding: 'credit',
      generated_from: null,
      last4: number.slice(-4),
      networks: { available: ['visa'], preferred: null },
      regulated_status: 'unregulated',
      three_d_secure_usage: { supported: true },
      wallet: null,
    },
    created: wallNow(),
    customer: null,
    customer_account: null,
    livemode: false,
    metadata: {},
    type: 'card',
  };
  hidden(method).behaviour = TEST_CARDS[number];
  return method;
}

// The payment method `id` names, checked for attaching to `customer`; one of Stripe's
// `pm_card_…` test ids makes a new one (stored once attached).
export function attachable(account, id, customer, param = 'payment_method') {
  let method;
  if (TEST_IDS[id]) method = cardMethod(account, TEST_IDS[id]);
  else {
    method = account.ref('payment_method', id, param, 'PaymentMethod');
    if (method.customer && method.customer !== customer.id) throw invalid('The payment method you provided has already been attached to a customer.', param);
  }
  // Decline cards are refused on attach: Stripe checks the card with the issuer first.
  if (hidden(method).behaviour === 'insufficient_funds') {
    const { message, code, decline_code } = DECLINES.insufficient_funds;
    throw cardError(message, code, decline_code);
  }
  return method;
}

export function attachMethod(account, method, customer) {
  if (method.customer === customer.id) return method;
  // A method made for this attachment dates from the customer's "now" (a test clock's too).
  if (!account.objects.get('payment_method').has(method.id)) method.created = account.now(customer);
  method.customer = customer.id;
  account.put(method);
  emit(account, 'payment_method.attached', method);
  return method;
}

function detach(account, method) {
  if (!method.customer) throw invalid(`The payment method ${method.id} is not attached to a customer.`, 'payment_method');
  const customer = account.objects.get('customer').get(method.customer);
  method.customer = null;
  if (customer?.invoice_settings.default_payment_method === method.id) {
    const was = structuredClone(customer);
    customer.invoice_settings.default_payment_method = null;
    emitUpdate(account, 'customer.updated', customer, was);
  }
  emit(account, 'payment_method.detached', method);
  return method;
}

function listMethods(account, customerId, p, url) {
  if (!customerId) throw required('customer');
  account.ref('customer', customerId, 'customer');
  if (p.type !== undefined && p.type !== 'card') return list([], p, url);
  return list(
    account.all('payment_method').filter((m) => m.customer === customerId),
    p,
    url,
  );
}

// The method an invoice is charged with: the subscription's default, else the customer's,
// and only while it is attached to that customer.
export function paymentMethodFor(account, customer, subscription) {
  for (const id of [subscription?.default_payment_method, customer.invoice_settings.default_payment_method]) {
    const method = id && account.objects.get('payment_method').get(id);
    if (method?.customer === customer.id) return method;
  }
  return null;
}

// What charging `method` does: null when it succeeds, otherwise the decline.
export function decline(method, { offSession }) {
  const behaviour = hidden(method).behaviour;
  if (behaviour === 'authentication_required') return offSession ? DECLINES.authentication_required : null;
  return DECLINES[behaviour] ?? null;
}

export function setupIntent(account, customer, method) {
  const intent = {
    id: newId('seti'),
    object: 'setup_intent',
    application: null,
    automatic_payment_methods: null,
    cancellation_reason: null,
    client_secret: null,
    created: account.now(method),
    customer: customer?.id ?? null,
    description: null,
    excluded_payment_method_types: null,
    flow_directions: null,
    last_setup_error: null,
    latest_attempt: null,
    livemode: false,
    mandate: null,
    metadata: {},
    next_action: null,
    on_behalf_of: null,
    payment_method: method.id,
    payment_method_configuration_details: null,
    payment_method_options: {},
    payment_method_types: ['card'],
    single_use_mandate: null,
    status: 'succeeded',
    usage: 'off_session',
  };
  intent.client_secret = `${intent.id}_secret_${randomBytes(18).toString('base64url')}`;
  account.put(intent);
  emit(account, 'setup_intent.created', intent);
  emit(account, 'setup_intent.succeeded', intent);
  return intent;
}

export const routes = [
  [
    'POST',
    /^\/v1\/payment_methods\/([^/]+)\/attach$/,
    (a, p, [id]) => {
      if (!p.customer) throw required('customer');
      const customer = a.ref('customer', p.customer, 'customer');
      return attachMethod(a, attachable(a, id, customer, 'id'), customer);
    },
  ],
  ['POST', /^\/v1\/payment_methods\/([^/]+)\/detach$/, (a, p, [id]) => detach(a, a.get('payment_method', id))],
  ['GET', /^\/v1\/payment_methods\/([^/]+)$/, (a, p, [id]) => a.get('payment_method', id)],
  ['GET', /^\/v1\/payment_methods$/, (a, p, _, url) => listMethods(a, p.customer, p, url)],
  ['GET', /^\/v1\/customers\/([^/]+)\/payment_methods$/, (a, p, [id], url) => listMethods(a, a.get('customer', id).id, p, url)],
  ['GET', /^\/v1\/setup_intents\/([^/]+)$/, (a, p, [id]) => a.get('setup_intent', id)],
  ['GET', /^\/v1\/setup_intents$/, (a, p, _, url) => list(a.all('setup_intent').filter((s) => !p.customer || s.customer === p.customer), p, url)],
];
