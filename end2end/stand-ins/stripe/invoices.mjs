// Invoices, their lines and pending invoice items: drafting, finalizing, charging, dunning
// (retries), voiding; the hosted invoice page and PDF.

import { decline, paymentMethodFor } from './cards.mjs';
import { DAY, bool, cardError, hidden, int, invalid, list, newId, oneOf, site } from './core.mjs';
import { invoiceFailed, invoicePaid, previewInvoice } from './subscriptions.mjs';
import { emit, whenSettled } from './webhooks.mjs';

// Days after the first failed attempt on which Stripe's default Smart Retries try again
// (8 attempts in 2 weeks, the first included).
const RETRY_DAYS = [1, 3, 5, 7, 10, 12, 14];
const NO_METHOD = { message: 'The customer has no default payment method to charge.', code: 'payment_method_missing' };

// A line to bill, before it belongs to an invoice:
//   { amount, description, quantity, price, period: {start, end}, subscription, subscriptionItem,
//     proration, credited?: {invoice, invoice_line_items}, invoiceItem? }
function lineFrom(invoiceId, line) {
  const details = { proration: line.proration, proration_details: { credited_items: line.credited ?? null }, subscription: line.subscription };
  return {
    id: newId('il'),
    object: 'line_item',
    amount: line.amount,
    currency: line.price.currency,
    description: line.description,
    discount_amounts: [],
    discountable: !line.proration,
    discounts: [],
    invoice: invoiceId,
    livemode: false,
    metadata: {},
    parent: line.invoiceItem
      ? { invoice_item_details: { invoice_item: line.invoiceItem, ...details }, subscription_item_details: null, type: 'invoice_item_details' }
      : { invoice_item_details: null, subscription_item_details: { invoice_item: null, ...details, subscription_item: line.subscriptionItem }, type: 'subscription_item_details' },
    period: { ...line.period },
    pretax_credit_amounts: [],
    pricing: { price_details: { price: line.price.id, product: line.price.product }, type: 'price_details', unit_amount_decimal: line.price.unit_amount_decimal },
    quantity: Math.max(0, Math.round(line.quantity)),
    quantity_decimal: String(line.quantity),
    subscription: null,
    subtotal: line.amount,
    taxes: [],
  };
}

// A proration kept for the subscription's next invoice (`proration_behavior=create_prorations`).
export function pendingItem(account, customer, line) {
  const item = {
    id: newId('ii'),
    object: 'invoiceitem',
    amount: line.amount,
    currency: line.price.currency,
    customer: customer.id,
    customer_account: null,
    date: account.now(customer),
    description: line.description,
    discountable: false,
    discounts: [],
    invoice: null,
    livemode: false,
    metadata: {},
    net_amount: line.amount,
    parent: { subscription_details: { subscription: line.subscription }, type: 'subscription_details' },
    period: { ...line.period },
    pricing: { price_details: { price: line.price.id, product: line.price.product }, type: 'price_details', unit_amount_decimal: line.price.unit_amount_decimal },
    proration: line.proration,
    quantity: line.quantity,
    quantity_decimal: String(line.quantity),
    tax_rates: [],
    test_clock: customer.test_clock,
  };
  hidden(item).line = line;
  account.put(item);
  return item;
}

// Pending items of a subscription as lines, newest first (Stripe's order).
export function pendingLines(account, subscriptionId) {
  return account
    .all('invoiceitem')
    .filter((item) => item.invoice === null && item.parent.subscription_details.subscription === subscriptionId)
    .reverse()
    .map((item) => ({ ...hidden(item).line, invoiceItem: item.id }));
}

export function dropPending(account, subscriptionId) {
  for (const item of account.all('invoiceitem')) {
    if (item.invoice === null && item.parent.subscription_details.subscription === subscriptionId) account.objects.get('invoiceitem').delete(item.id);
  }
}

// The invoice object for `lines`, not stored: also what previews and `invoice.upcoming` show.
export function buildInvoice(account, { customer, subscription, reason, lines, period, id = newId('in') }) {
  const now = account.now(customer);
  const invoice = {
    id,
    object: 'invoice',
    account_country: 'US',
    account_name: null,
    account_tax_ids: null,
    amount_due: 0,
    amount_overpaid: 0,
    amount_paid: 0,
    amount_remaining: 0,
    amount_shipping: 0,
    application: null,
    attempt_count: 0,
    attempted: false,
    auto_advance: true,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    automatically_finalizes_at: null,
    billing_reason: reason,
    collection_method: 'charge_automatically',
    created: now,
    currency: subscription?.currency ?? lines[0]?.price.currency ?? customer.currency ?? 'usd',
    custom_fields: null,
    customer: customer.id,
    customer_account: null,
    customer_address: null,
    customer_email: customer.email,
    customer_name: customer.name,
    customer_phone: customer.phone,
    customer_shipping: null,
    customer_tax_exempt: customer.tax_exempt,
    customer_tax_ids: [],
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    due_date: null,
    effective_at: null,
    ending_balance: null,
    footer: null,
    from_invoice: null,
    hosted_invoice_url: null,
    invoice_pdf: null,
    issuer: { type: 'self' },
    last_finalization_error: null,
    latest_revision: null,
    lines: { object: 'list', data: [], has_more: false, url: `/v1/invoices/${id}/lines` },
    livemode: false,
    metadata: {},
    next_payment_attempt: null,
    number: null,
    on_behalf_of: null,
    parent: subscription
      ? { quote_details: null, subscription_details: { metadata: { ...subscription.metadata }, subscription: subscription.id }, type: 'subscription_details' }
      : null,
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    period_end: period.end,
    period_start: period.start,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    receipt_number: null,
    rendering: { amount_tax_display: null, pdf: { page_size: 'auto' }, template: null, template_version: null },
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: 'draft',
    status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
    subscription: null,
    subtotal: 0,
    subtotal_excluding_tax: 0,
    test_clock: customer.test_clock,
    total: 0,
    total_discount_amounts: [],
    total_excluding_tax: 0,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: null,
  };
  invoice.lines.data = lines.map((line) => lineFrom(id, line));
  const total = lines.reduce((sum, line) => sum + line.amount, 0);
  Object.assign(invoice, { subtotal: total, subtotal_excluding_tax: total, total, total_excluding_tax: total });
  invoice.amount_due = invoice.amount_remaining = Math.max(0, total + customer.balance);
  return invoice;
}

// A draft invoice, stored, with the subscription's pending items swept in first.
export function createInvoice(account, { customer, subscription, reason, lines, period }) {
  const pending = subscription ? pendingLines(account, subscription.id) : [];
  const invoice = buildInvoice(account, { customer, subscription, reason, lines: [...pending, ...lines], period });
  for (const line of pending) account.objects.get('invoiceitem').get(line.invoiceItem).invoice = invoice.id;
  account.put(invoice);
  const created = emit(account, 'invoice.created', invoice);
  // A clock's steps don't wait for deliveries, so on the invoice's timeline they are done by
  // the time it was (or is to be) finalized.
  whenSettled(created, () => {
    const finalizing = invoice.status_transitions.finalized_at ?? invoice.automatically_finalizes_at ?? Infinity;
    invoice.webhooks_delivered_at = Math.min(account.now(invoice), finalizing);
  });
  return invoice;
}

// Draft → open: numbered, the customer's details frozen, the balance applied; charged unless
// `charge` is false. Nothing due means paid at once.
export function finalize(account, invoice, { charge = true, offSession = true } = {}) {
  const customer = account.objects.get('customer').get(invoice.customer);
  const now = account.now(invoice);
  invoice.number = `${customer.invoice_prefix}-${String(customer.next_invoice_sequence++).padStart(4, '0')}`;
  invoice.status = 'open';
  invoice.status_transitions.finalized_at = invoice.effective_at = now;
  invoice.automatically_finalizes_at = null;
  Object.assign(invoice, { customer_email: customer.email, customer_name: customer.name, customer_phone: customer.phone });
  invoice.hosted_invoice_url = `${site.origin}/invoice/${invoice.id}`;
  invoice.invoice_pdf = `${site.origin}/invoice/${invoice.id}/pdf`;
  // A credit (negative total) stays on the customer's balance for the next invoice.
  invoice.starting_balance = customer.balance;
  const owed = invoice.total + customer.balance;
  invoice.amount_due = invoice.amount_remaining = Math.max(0, owed);
  invoice.ending_balance = customer.balance = Math.min(0, owed);
  emit(account, 'invoice.finalized', invoice);
  if (invoice.amount_due === 0) markPaid(account, invoice);
  else if (charge) collect(account, invoice, { offSession, automatic: true });
  return invoice;
}

// One payment attempt; returns the decline, or null when paid.
function collect(account, invoice, { method, offSession = true, automatic = false }) {
  const customer = account.objects.get('customer').get(invoice.customer);
  const subscription = subscriptionOf(account, invoice);
  const charged = method ?? paymentMethodFor(account, customer, subscription);
  const failure = charged ? decline(charged, { offSession }) : NO_METHOD;
  invoice.attempted = true;
  invoice.attempt_count += 1;
  if (failure) paymentFailed(account, invoice, failure, automatic);
  else markPaid(account, invoice);
  return failure;
}

function markPaid(account, invoice) {
  invoice.status = 'paid';
  invoice.amount_paid = invoice.amount_due;
  invoice.amount_remaining = 0;
  invoice.status_transitions.paid_at = account.now(invoice);
  invoice.next_payment_attempt = null;
  invoice.auto_advance = false;
  emit(account, 'invoice.paid', invoice);
  emit(account, 'invoice.payment_succeeded', invoice);
  invoicePaid(account, invoice);
}

// Dunning: retries on RETRY_DAYS after the first failure; the first invoice of a subscription is
// not retried (the subscription stays incomplete and expires instead). A manual attempt doesn't
// move the schedule.
function paymentFailed(account, invoice, failure, automatic) {
  const state = hidden(invoice);
  const retried = invoice.billing_reason !== 'subscription_create';
  let final = false;
  if (retried && automatic) {
    state.firstFailure ??= account.now(invoice);
    state.retries ??= 0;
    const days = RETRY_DAYS[state.retries];
    invoice.next_payment_attempt = days === undefined ? null : state.firstFailure + days * DAY;
    final = days === undefined;
  }
  emit(account, 'invoice.payment_failed', invoice);
  if (failure.actionRequired) emit(account, 'invoice.payment_action_required', invoice);
  invoiceFailed(account, invoice, { final });
}

function retry(account, invoice) {
  hidden(invoice).retries += 1;
  collect(account, invoice, { automatic: true });
}

function subscriptionOf(account, invoice) {
  const id = invoice.parent?.subscription_details?.subscription;
  return id ? account.objects.get('subscription').get(id) : undefined;
}

// No more automatic finalizing or retrying (the subscription ended).
export function stopCollecting(invoice) {
  invoice.auto_advance = false;
  invoice.next_payment_attempt = null;
}

export function voidInvoice(account, invoice) {
  if (invoice.status !== 'open') throw invalid(`You can only void an open invoice; this one is ${invoice.status}.`, undefined, 'invoice_not_editable');
  invoice.status = 'void';
  invoice.status_transitions.voided_at = account.now(invoice);
  stopCollecting(invoice);
  emit(account, 'invoice.voided', invoice);
  return invoice;
}

function markUncollectible(account, invoice) {
  if (invoice.status !== 'open') throw invalid(`You can only mark an open invoice uncollectible; this one is ${invoice.status}.`, undefined, 'invoice_not_editable');
  invoice.status = 'uncollectible';
  invoice.status_transitions.marked_uncollectible_at = account.now(invoice);
  stopCollecting(invoice);
  emit(account, 'invoice.marked_uncollectible', invoice);
  return invoice;
}

// `POST /v1/invoices/:id/pay`: with `payment_method`, or the subscription's, else the customer's
// default; a decline is a 402 (and `invoice.payment_failed`).
function pay(account, invoice, p) {
  if (invoice.status === 'paid') throw invalid('Invoice is already paid.');
  if (invoice.status === 'void') throw invalid('You cannot pay a void invoice.', undefined, 'invoice_not_editable');
  if (invoice.status === 'draft') finalize(account, invoice, { charge: false });
  if (invoice.status === 'paid') return invoice;
  if (bool(p.paid_out_of_band, 'paid_out_of_band')) {
    markPaid(account, invoice);
    return invoice;
  }
  const customer = account.objects.get('customer').get(invoice.customer);
  let method = null;
  if (p.payment_method) {
    method = account.ref('payment_method', p.payment_method, 'payment_method', 'PaymentMethod');
    if (method.customer !== customer.id) throw invalid('The payment method must be attached to the invoice\'s customer.', 'payment_method');
  } else {
    method = paymentMethodFor(account, customer, subscriptionOf(account, invoice));
    if (!method) throw invalid(`${NO_METHOD.message} Attach one and make it the default, or pass payment_method.`, 'payment_method', NO_METHOD.code);
  }
  const failure = collect(account, invoice, { method, offSession: bool(p.off_session, 'off_session') ?? true });
  if (failure) throw cardError(failure.message, failure.code, failure.decline_code);
  return invoice;
}

// Due work on an invoice, for the clock: finalizing a draft an hour after it was made, retries.
export function invoiceMoments(account, invoice) {
  if (invoice.status === 'draft' && invoice.auto_advance && invoice.automatically_finalizes_at !== null) {
    const subscription = subscriptionOf(account, invoice);
    // An unpaid subscription's invoices are made but not attempted.
    return [{ at: invoice.automatically_finalizes_at, rank: 3, run: () => finalize(account, invoice, { charge: subscription?.status !== 'unpaid' }) }];
  }
  if (invoice.status === 'open' && invoice.next_payment_attempt !== null) {
    return [{ at: invoice.next_payment_attempt, rank: 4, run: () => retry(account, invoice) }];
  }
  return [];
}

function finalizeNow(account, invoice, p) {
  if (invoice.status !== 'draft') throw invalid('This invoice is already finalized.', undefined, 'invoice_not_editable');
  return finalize(account, invoice, { charge: bool(p.auto_advance, 'auto_advance') ?? true });
}

function listInvoices(account, p, url) {
  const status = oneOf(p.status, ['draft', 'open', 'paid', 'uncollectible', 'void'], 'status');
  return list(
    account
      .all('invoice')
      .filter(
        (i) =>
          (p.customer === undefined || i.customer === p.customer) &&
          (p.subscription === undefined || subscriptionOf(account, i)?.id === p.subscription) &&
          (status === undefined || i.status === status),
      ),
    p,
    url,
  );
}

function listLines(invoice, p, url) {
  const limit = Math.min(int(p.limit, 'limit', { min: 1 }) ?? 10, 100);
  let lines = invoice.lines.data;
  if (p.starting_after) lines = lines.slice(lines.findIndex((l) => l.id === p.starting_after) + 1);
  return { object: 'list', data: lines.slice(0, limit), has_more: lines.length > limit, url };
}

function listInvoiceItems(account, p, url) {
  const pending = bool(p.pending, 'pending');
  const items = account
    .all('invoiceitem')
    .filter((i) => (p.customer === undefined || i.customer === p.customer) && (p.invoice === undefined || i.invoice === p.invoice) && (pending === undefined || (i.invoice === null) === pending));
  return list(items, p, url);
}

export const routes = [
  ['POST', /^\/v1\/invoices\/create_preview$/, (a, p) => previewInvoice(a, p)],
  ['GET', /^\/v1\/invoices$/, (a, p, _, url) => listInvoices(a, p, url)],
  ['GET', /^\/v1\/invoices\/([^/]+)$/, (a, p, [id]) => a.get('invoice', id)],
  ['GET', /^\/v1\/invoices\/([^/]+)\/lines$/, (a, p, [id], url) => listLines(a.get('invoice', id), p, url)],
  ['POST', /^\/v1\/invoices\/([^/]+)\/pay$/, (a, p, [id]) => pay(a, a.get('invoice', id), p)],
  ['POST', /^\/v1\/invoices\/([^/]+)\/void$/, (a, p, [id]) => voidInvoice(a, a.get('invoice', id))],
  ['POST', /^\/v1\/invoices\/([^/]+)\/mark_uncollectible$/, (a, p, [id]) => markUncollectible(a, a.get('invoice', id))],
  ['POST', /^\/v1\/invoices\/([^/]+)\/finalize$/, (a, p, [id]) => finalizeNow(a, a.get('invoice', id), p)],
  ['GET', /^\/v1\/invoiceitems$/, (a, p, _, url) => listInvoiceItems(a, p, url)],
  ['GET', /^\/v1\/invoiceitems\/([^/]+)$/, (a, p, [id]) => a.get('invoiceitem', id)],
];
