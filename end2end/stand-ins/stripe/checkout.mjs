// Checkout sessions (subscription and setup modes) and their hosted page, where a person (or
// Playwright, or a plain form POST) enters a test card.

import { owner } from './accounts.mjs';
import { TEST_CARDS, attachMethod, cardMethod, decline, setupIntent } from './cards.mjs';
import { amountFor, createCustomer } from './catalog.mjs';
import { DAY, array, hidden, int, invalid, list, metadata, newId, oneOf, required, site, wallNow } from './core.mjs';
import { checkoutHtml, goneHtml } from './pages.mjs';
import { createSubscription } from './subscriptions.mjs';
import { emit, inBatch } from './webhooks.mjs';

const DEFAULT_LIFETIME = DAY;

function lineItems(account, given) {
  const items = array(given).map((item, i) => {
    if (!item?.price) throw required(`line_items[${i}][price]`);
    const price = account.ref('price', item.price, `line_items[${i}][price]`, 'price');
    if (!price.recurring) throw invalid('In subscription mode every line item needs a recurring price.', `line_items[${i}][price]`);
    const metered = price.recurring.usage_type === 'metered';
    if (metered && item.quantity !== undefined) throw invalid('Metered prices are billed by usage: leave out quantity.', `line_items[${i}][quantity]`);
    return { price, quantity: metered ? null : (int(item.quantity, `line_items[${i}][quantity]`, { min: 0 }) ?? 1) };
  });
  if (!items.length) throw required('line_items');
  return items;
}

function createSession(account, p) {
  const mode = oneOf(p.mode, ['subscription', 'setup', 'payment'], 'mode');
  if (!mode) throw required('mode');
  if (mode === 'payment') throw invalid('The stand-in supports mode=subscription and mode=setup only.', 'mode');
  if (!p.success_url) throw required('success_url');
  const customer = p.customer ? account.ref('customer', p.customer, 'customer') : null;
  const items = mode === 'subscription' ? lineItems(account, p.line_items) : [];
  const data = p.subscription_data ?? {};
  const trialEnd = int(data.trial_end, 'subscription_data[trial_end]');
  const trialDays = int(data.trial_period_days, 'subscription_data[trial_period_days]', { min: 1 });
  const now = customer ? account.now(customer) : wallNow();
  if (trialEnd !== undefined && trialEnd <= now + 2 * DAY) throw invalid('subscription_data[trial_end] must be at least 48 hours in the future.', 'subscription_data[trial_end]');
  const dueNow = trialEnd || trialDays ? 0 : items.filter((i) => i.quantity !== null).reduce((sum, i) => sum + amountFor(i.price, i.quantity), 0);
  const expiresAt = int(p.expires_at, 'expires_at');
  const lifetime = expiresAt === undefined ? DEFAULT_LIFETIME : expiresAt - now;
  if (lifetime < 30 * 60 || lifetime > DAY) throw invalid('expires_at must be between 30 minutes and 24 hours from now.', 'expires_at');
  const session = {
    id: newId('cs_test', 24),
    object: 'checkout.session',
    adaptive_pricing: { enabled: false },
    after_expiration: null,
    allow_promotion_codes: null,
    amount_subtotal: mode === 'subscription' ? dueNow : null,
    amount_total: mode === 'subscription' ? dueNow : null,
    automatic_tax: { enabled: false, liability: null, provider: null, status: null },
    billing_address_collection: null,
    cancel_url: p.cancel_url || null,
    client_reference_id: p.client_reference_id || null,
    client_secret: null,
    collected_information: null,
    consent: null,
    consent_collection: null,
    created: now,
    currency: mode === 'subscription' ? items[0].price.currency : p.currency?.toLowerCase() || null,
    currency_conversion: null,
    custom_fields: [],
    custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
    customer: customer?.id ?? null,
    customer_account: null,
    customer_creation: customer ? null : 'always',
    customer_details: null,
    customer_email: p.customer_email || null,
    discounts: [],
    expires_at: now + lifetime,
    integration_identifier: null,
    invoice: null,
    invoice_creation: null,
    livemode: false,
    locale: null,
    managed_payments: { enabled: false },
    metadata: metadata(p.metadata),
    mode,
    origin_context: null,
    payment_intent: null,
    payment_link: null,
    payment_method_collection: mode === 'subscription' ? 'always' : null,
    payment_method_configuration_details: null,
    payment_method_options: {},
    payment_method_types: ['card'],
    payment_status: mode === 'setup' ? 'no_payment_required' : 'unpaid',
    permissions: null,
    phone_number_collection: { enabled: false },
    recovered_from: null,
    saved_payment_method_options: null,
    setup_intent: null,
    shipping_address_collection: null,
    shipping_cost: null,
    shipping_options: [],
    status: 'open',
    submit_type: null,
    subscription: null,
    success_url: p.success_url,
    total_details: mode === 'subscription' ? { amount_discount: 0, amount_shipping: 0, amount_tax: 0 } : null,
    ui_mode: 'hosted_page',
    url: null,
    wallet_options: null,
  };
  session.url = `${site.origin}/checkout/${session.id}`;
  Object.assign(hidden(session), { items, subscriptionData: { ...data, trialEnd, trialDays } });
  return account.put(session);
}

function expire(account, session) {
  if (session.status !== 'open') throw invalid(`Only an open Checkout Session can be expired; this one is ${session.status}.`);
  Object.assign(session, { status: 'expired', url: null });
  emit(account, 'checkout.session.expired', session);
  return session;
}

export function sessionMoments(account, session) {
  return session.status === 'open' ? [{ at: session.expires_at, rank: 6, run: () => expire(account, session) }] : [];
}

// --- The hosted page.

// Only Stripe's test cards the stand-in knows are cards here: any other number (mistyped, or a
// real card) is "incorrect", as Stripe's test mode says of real cards.
function readCard(form) {
  const number = String(form.card_number ?? '').replace(/[\s-]/g, '');
  if (!TEST_CARDS[number]) return { error: 'Your card number is incorrect.' };
  const expiry = String(form.expiry ?? '').replace(/\s/g, '');
  const parts = expiry.match(/^(\d{1,2})\/(\d{2}|\d{4})$/) ?? expiry.match(/^(\d{2})(\d{2})$/);
  if (!parts) return { error: "Your card's expiration date is incomplete." };
  const month = Number(parts[1]);
  const year = parts[2].length === 2 ? 2000 + Number(parts[2]) : Number(parts[2]);
  if (month < 1 || month > 12) return { error: "Your card's expiration month is invalid." };
  const today = new Date();
  if (year < today.getUTCFullYear() || (year === today.getUTCFullYear() && month < today.getUTCMonth() + 1)) return { error: "Your card's expiration date is in the past." };
  if (year > today.getUTCFullYear() + 50) return { error: "Your card's expiration year is invalid." };
  if (!/^\d{3,4}$/.test(String(form.cvc ?? '').trim())) return { error: "Your card's security code is incomplete." };
  return { number, exp_month: month, exp_year: year, name: String(form.name ?? '').trim() || null };
}

// The card is checked as Stripe's page would; a decline keeps the session open for another try.
function complete(account, session, card) {
  if (TEST_CARDS[card.number] === 'insufficient_funds') return 'Your card has insufficient funds.';
  const customer = session.customer
    ? account.objects.get('customer').get(session.customer)
    : createCustomer(account, { email: session.customer_email ?? undefined, name: card.name ?? undefined });
  if (!customer) return 'This checkout session can no longer be completed.';
  const method = attachMethod(account, cardMethod(account, card.number, card), customer);
  const state = hidden(session);
  if (session.mode === 'subscription') {
    if (session.amount_total > 0 && decline(method, { offSession: false })) return 'Your card was declined.';
    const data = state.subscriptionData;
    const sub = createSubscription(
      account,
      {
        customer: customer.id,
        items: state.items.map((i) => ({ price: i.price.id, ...(i.quantity !== null && { quantity: String(i.quantity) }) })),
        default_payment_method: method.id,
        metadata: data.metadata,
        description: data.description,
        ...(data.trialEnd && { trial_end: String(data.trialEnd) }),
        ...(data.trialDays && { trial_period_days: String(data.trialDays) }),
        ...(data.trial_settings && { trial_settings: data.trial_settings }),
      },
      { onSession: true },
    );
    Object.assign(session, { subscription: sub.id, invoice: sub.latest_invoice, payment_status: session.amount_total > 0 ? 'paid' : 'no_payment_required' });
  } else {
    session.setup_intent = setupIntent(account, customer, method).id;
  }
  Object.assign(session, {
    status: 'complete',
    url: null,
    customer: customer.id,
    customer_details: {
      address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null },
      business_name: null,
      email: customer.email,
      individual_name: null,
      name: card.name ?? customer.name,
      phone: null,
      tax_exempt: 'none',
      tax_ids: [],
    },
  });
  emit(account, 'checkout.session.completed', session);
  return null;
}

// GET shows the form; POST (the form, or a test's own POST) pays. Answers {status, html} or
// {redirect}.
export function checkoutPage(method, id, form) {
  const [account, session] = owner('checkout.session', id);
  if (!session) return { status: 404, html: goneHtml('No such checkout session.') };
  if (session.status !== 'open') return { status: 410, html: goneHtml(`This checkout session is ${session.status === 'complete' ? 'already complete' : 'expired'}.`) };
  const customer = session.customer ? account.objects.get('customer').get(session.customer) : null;
  const render = (status, error) => ({ status, html: checkoutHtml(account, session, customer, { error, values: form ?? {} }) });
  if (method === 'GET') return render(200);
  const card = readCard(form);
  if (card.error) return render(400, card.error);
  const error = inBatch(account, { id: null, idempotency_key: null }, () => complete(account, session, card));
  if (error) return render(402, error);
  return { redirect: session.success_url.replaceAll('{CHECKOUT_SESSION_ID}', session.id) };
}

// Newest first, by the filters Stripe offers that Tessera uses (customer, status).
function listSessions(account, p, url) {
  if (p.status !== undefined) oneOf(p.status, ['open', 'complete', 'expired'], 'status');
  const wanted = (s) => (p.customer === undefined || s.customer === p.customer) && (p.status === undefined || s.status === p.status);
  return list(account.all('checkout.session').filter(wanted), p, url);
}

export const routes = [
  ['POST', /^\/v1\/checkout\/sessions$/, (a, p) => createSession(a, p)],
  ['GET', /^\/v1\/checkout\/sessions$/, (a, p, _, url) => listSessions(a, p, url)],
  ['GET', /^\/v1\/checkout\/sessions\/([^/]+)$/, (a, p, [id]) => a.get('checkout.session', id, 'checkout.session')],
  ['POST', /^\/v1\/checkout\/sessions\/([^/]+)\/expire$/, (a, p, [id]) => expire(a, a.get('checkout.session', id, 'checkout.session'))],
];
