// The pages the stand-in serves to people: the hosted checkout form, the hosted invoice page and
// its PDF. Plain, accessible HTML: tests find fields by their labels.

import { amountFor } from './catalog.mjs';
import { DAY, formatDate, hidden, money } from './core.mjs';

const escape = (text) => String(text ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escape(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}label{display:block;margin-top:.75rem}
input{display:block;width:100%;padding:.4rem;font-size:1rem}button{margin-top:1rem;padding:.5rem 1.5rem;font-size:1rem}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .5rem .25rem 0}[role=alert]{color:#a00;font-weight:bold}</style></head>
<body><main>
${body}
</main></body>
</html>`;
}

export const goneHtml = (message) => page('Checkout', `<h1>Checkout</h1>\n<p>${escape(message)}</p>`);

const per = ({ interval, interval_count }) => (interval_count === 1 ? `per ${interval}` : `every ${interval_count} ${interval}s`);
const names = (list) => (list.length < 2 ? list.join('') : `${list.slice(0, -1).join(', ')} and ${list.at(-1)}`);

export function checkoutHtml(account, session, customer, { error, values }) {
  const product = (price) => account.objects.get('product').get(price.product)?.name ?? price.product;
  const field = (id, label, autocomplete, extra = '') =>
    `<label for="${id}">${label}</label>\n<input id="${id}" name="${id}" autocomplete="${autocomplete}" ${extra} value="${id === 'cvc' ? '' : escape(values[id])}">`;
  let heading;
  let summary = '';
  if (session.mode === 'setup') {
    heading = `Save a card for ${customer?.name ?? customer?.email ?? session.customer_email ?? 'your account'}`;
  } else {
    const { items, subscriptionData } = hidden(session);
    const { currency, recurring } = items[0].price;
    heading = `Subscribe to ${names([...new Set(items.map((i) => product(i.price)))])}`;
    const rows = items.map((i) =>
      i.quantity === null
        ? `<tr><td>${escape(product(i.price))}</td><td colspan="2">${money(i.price.unit_amount_decimal, currency)} per unit, billed by usage</td></tr>`
        : `<tr><td>${escape(product(i.price))}</td><td>${i.quantity} × ${money(i.price.unit_amount_decimal, currency)}</td><td>${money(amountFor(i.price, i.quantity), currency)} ${per(recurring)}</td></tr>`,
    );
    const total = items.filter((i) => i.quantity !== null).reduce((sum, i) => sum + amountFor(i.price, i.quantity), 0);
    const trialEnd = subscriptionData.trialEnd ?? (subscriptionData.trialDays && session.created + subscriptionData.trialDays * DAY);
    summary = `<table><caption>What you pay</caption>
<thead><tr><th scope="col">Item</th><th scope="col">Quantity</th><th scope="col">Amount</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
<p>Total ${per(recurring)}: <strong>${money(total, currency)}</strong>${items.some((i) => i.quantity === null) ? ' plus usage' : ''}</p>
${trialEnd ? `<p>Free trial until ${formatDate(trialEnd)}; due today: ${money(0, currency)}</p>` : ''}`;
  }
  const body = `<h1>${escape(heading)}</h1>
${summary}
${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/checkout/${escape(session.id)}" novalidate>
${field('card_number', 'Card number', 'cc-number', 'inputmode="numeric"')}
${field('expiry', 'Expiry (MM / YY)', 'cc-exp', 'placeholder="MM / YY"')}
${field('cvc', 'CVC', 'cc-csc', 'inputmode="numeric"')}
${field('name', 'Name on card', 'cc-name')}
<button type="submit">${session.mode === 'setup' ? 'Save card' : 'Subscribe'}</button>
</form>
${session.cancel_url ? `<p><a href="${escape(session.cancel_url)}">Cancel</a></p>` : ''}`;
  return page(heading, body);
}

export function invoiceHtml(invoice) {
  const title = `Invoice ${invoice.number ?? '(draft)'}`;
  const rows = invoice.lines.data.map(
    (line) =>
      `<tr><td>${escape(line.description)}</td><td>${formatDate(line.period.start)} – ${formatDate(line.period.end)}</td><td>${money(line.amount, line.currency)}</td></tr>`,
  );
  const body = `<h1>${escape(title)}</h1>
<p>Status: ${escape(invoice.status)}</p>
<p>Billed to: ${escape(invoice.customer_name ?? '')} ${escape(invoice.customer_email ?? '')}</p>
<table><thead><tr><th scope="col">Description</th><th scope="col">Period</th><th scope="col">Amount</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
<p>Total: ${money(invoice.total, invoice.currency)}</p>
<p>Amount due: ${money(invoice.amount_due, invoice.currency)}; paid: ${money(invoice.amount_paid, invoice.currency)}; remaining: ${money(invoice.amount_remaining, invoice.currency)}</p>
${invoice.invoice_pdf ? `<p><a href="${escape(invoice.invoice_pdf)}">Download PDF</a></p>` : ''}`;
  return page(title, body);
}

// A one-page PDF of the invoice's text (Helvetica, WinAnsi: Latin-1 bytes).
export function invoicePdf(invoice) {
  const text = [
    `Invoice ${invoice.number ?? '(draft)'}`,
    `Status: ${invoice.status}`,
    `Billed to: ${invoice.customer_name ?? ''} ${invoice.customer_email ?? ''}`,
    '',
    ...invoice.lines.data.map((line) => `${line.description}  ${formatDate(line.period.start)} - ${formatDate(line.period.end)}  ${money(line.amount, line.currency)}`),
    '',
    `Total: ${money(invoice.total, invoice.currency)}`,
    `Amount due: ${money(invoice.amount_due, invoice.currency)}`,
    `Amount paid: ${money(invoice.amount_paid, invoice.currency)}`,
  ];
  const pdfString = (s) => `(${s.replace(/[^\x20-\xff]/g, '?').replace(/[\\()]/g, '\\$&')})`;
  const stream = `BT /F1 11 Tf 50 790 Td 16 TL ${text.map((line) => `${pdfString(line)} Tj T*`).join(' ')} ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
  ];
  let pdf = '%PDF-1.4\n';
  const offsets = objects.map((object, i) => {
    const offset = pdf.length;
    pdf += `${i + 1} 0 obj\n${object}\nendobj\n`;
    return offset;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}
