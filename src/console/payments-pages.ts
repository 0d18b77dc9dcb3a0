/**
 * Payments: search and filters (`/console/payments`) and one payment's timeline
 * (`/console/payments/:key`), over the list and view services of GET /payments (payments/list.ts,
 * payments/view.ts). The search box takes a key, an attempt reference or a caller's own key (the
 * payment opens), or a customer's email (the list filters on it).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { withoutCardNumbers } from '../kernel/card-number.ts';
import { INTENT_STATES, INTENT_TYPES } from '../kernel/intent.ts';
import { CURRENCIES } from '../kernel/money.ts';
import type { Intent } from '../kernel/payment.ts';
import {
  listPayments,
  paymentListQuerySchema,
  type PaymentSummary,
  type UnreadablePayment,
} from '../payments/list.ts';
import { findPayment, type PaymentView } from '../payments/view.ts';
import { badge, href, html, money, seg, when, type Html } from './html.ts';
import { page, type PageContext } from './layout.ts';
import { CONSOLE_PATH } from './paths.ts';
import { HIDDEN, type ConsoleKit } from './kit.ts';

export const PAGE_SIZE = 50;

/** The form's fields, as the browser sends them (empty fields are absent). */
const searchForm = z.object({
  q: z.string().trim().max(320, 'the search is longer than 320 characters').optional(),
  state: z.string().optional(),
  type: z.string().optional(),
  currency: z.string().optional(),
  batch: z.string().trim().optional(),
  subscription: z.string().trim().optional(),
  from: z.string().optional(),
  to: z.string().optional(),
  cursor: z.string().optional(),
});
type SearchForm = z.infer<typeof searchForm>;

function nonEmpty(q: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (q && typeof q === 'object') {
    for (const [k, v] of Object.entries(q))
      if (typeof v === 'string' && v.trim() !== '') out[k] = v;
  }
  return out;
}

const option = (value: string, selected: string | undefined, label = value) =>
  html`<option value="${value}" ${value === selected ? html`selected` : ''}>${label}</option>`;

function select(
  name: string,
  values: readonly string[],
  selected: string | undefined,
  any: string,
) {
  return html`<label
    >${name}
    <select name="${name}">
      ${option('', selected, any)} ${values.map((v) => option(v, selected))}
    </select></label
  >`;
}

function searchFormHtml(f: SearchForm): Html {
  return html`<form class="filters" method="get" action="${CONSOLE_PATH}/payments" role="search">
    <label
      >Key, reference or customer email
      <input
        type="search"
        name="q"
        value="${f.q ?? ''}"
        size="34"
        placeholder="api_order-1001, bat_…_1, ada@example.com"
    /></label>
    ${select('state', INTENT_STATES, f.state, 'any')} ${select('type', INTENT_TYPES, f.type, 'any')}
    ${select('currency', CURRENCIES, f.currency, 'any')}
    <label>batch <input name="batch" value="${f.batch ?? ''}" size="14" /></label>
    <label
      >subscription <input name="subscription" value="${f.subscription ?? ''}" size="14"
    /></label>
    <label>created from <input type="date" name="from" value="${f.from ?? ''}" /></label>
    <label>to <input type="date" name="to" value="${f.to ?? ''}" /></label>
    <button type="submit">Search</button>
    <a class="button secondary" href="${CONSOLE_PATH}/payments">Clear</a>
  </form>`;
}

/** A list of payments as a table (also the inbox's and a batch's failed rows). */
export function paymentTable(
  rows: readonly PaymentSummary[],
  opts: { review?: boolean } = {},
): Html {
  if (rows.length === 0) return html`<p class="muted" data-empty>No payments.</p>`;
  return html`<table class="payments">
    <thead>
      <tr>
        <th>Created</th>
        <th>Key</th>
        <th>Type</th>
        <th>State</th>
        <th class="num">Amount</th>
        <th>Reason</th>
        <th>Batch</th>
        <th>Subscription</th>
        <th>Updated</th>
        ${opts.review ? html`<th></th>` : ''}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (p) =>
          html`<tr data-key="${p.key}">
            <td>${when(p.createdAt)}</td>
            <td><a class="mono" href="${CONSOLE_PATH}/payments/${seg(p.key)}">${p.key}</a></td>
            <td>${p.type}</td>
            <td>${badge(p.state)}</td>
            <td class="num">${money(p.amountMinor, p.currency)}</td>
            <td>${p.reason ?? ''}</td>
            <td>
              ${p.batchId ? html`<a href="${CONSOLE_PATH}/batches/${seg(p.batchId)}">${p.batchId}</a>` : ''}
            </td>
            <td>
              ${
                p.subscriptionId
                  ? html`<a href="${CONSOLE_PATH}/subscriptions/${seg(p.subscriptionId)}"
                      >${p.subscriptionId}</a
                    >`
                  : ''
              }
            </td>
            <td>${when(p.updatedAt)}</td>
            ${
              opts.review
                ? html`<td>
                    <a class="button" href="${CONSOLE_PATH}/inbox/${seg(p.key)}">Review</a>
                  </td>`
                : ''
            }
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** The payments of a page this version cannot read (payments/list.ts), named above its table. */
export function unreadableNote(unreadable: readonly UnreadablePayment[] | undefined): Html {
  if (!unreadable || unreadable.length === 0) return html``;
  return html`<div class="flash error" role="alert" data-unreadable>
    ${unreadable.length === 1 ? 'One payment' : `${unreadable.length} payments`} of this page cannot
    be read by this version and ${unreadable.length === 1 ? 'is' : 'are'} left out (another version
    wrote ${unreadable.length === 1 ? 'it' : 'them'}, or a hand edit; the error log names
    ${unreadable.length === 1 ? 'it' : 'them'} too):
    <ul>
      ${unreadable.map((u) => html`<li><span class="mono">${u.key}</span>: ${u.why}</li>`)}
    </ul>
  </div>`;
}

/** Field issues of a zod error, for people. */
export const issuesText = (issues: readonly { path: PropertyKey[]; message: string }[]) =>
  issues.map((i) => `${i.path.map(String).join('.') || 'query'}: ${i.message}`).join('; ');

/** Who or what a payment pays or charges: never a card token, an authorization or a secret. */
function payeeFacts(intent: Intent): Html {
  const p = intent.payee;
  if (p.kind === 'charge') {
    return html`<dt>Customer</dt>
      <dd>${p.email}</dd>
      <dt>Narration</dt>
      <dd class="narration">${p.narration ?? ''}</dd>`;
  }
  if (p.kind === 'refund') {
    return html`<dt>Refund of</dt>
      <dd>
        <a class="mono" href="${CONSOLE_PATH}/payments/${seg(p.chargeKey)}">${p.chargeKey}</a>
      </dd>
      <dt>Reason</dt>
      <dd class="narration">${p.reason ?? ''}</dd>
      <dt>Requested by</dt>
      <dd>${p.requestedBy ?? '—'}</dd>`;
  }
  const last4 = p.accountNumber.slice(-4);
  return html`<dt>Beneficiary</dt>
    <dd>${p.accountName}</dd>
    <dt>Bank</dt>
    <dd>${p.bankName} (${p.bankCode}) · account ••••${last4} · ${p.paymentMode}</dd>
    <dt>Narration</dt>
    <dd class="narration">${p.narration}</dd>`;
}

/** The facts of one payment (the view plus the payee's safe fields and the row's meta). */
export function paymentFacts(view: PaymentView, intent: Intent | undefined): Html {
  const meta = Object.entries(intent?.meta ?? {});
  return html`<dl class="facts">
    <dt>Key</dt>
    <dd class="mono">${view.key}</dd>
    <dt>State</dt>
    <dd>${badge(view.state)} ${view.reason ? html`<span>${view.reason}</span>` : ''}</dd>
    <dt>Amount</dt>
    <dd>${money(view.amountMinor, view.currency)}</dd>
    ${
      view.fee !== undefined
        ? html`<dt>Fee</dt>
            <dd>${view.fee} ${view.currency}</dd>`
        : ''
    }
    <dt>Type</dt>
    <dd>${view.type}${intent ? html` · from ${intent.origin}` : ''}</dd>
    ${intent ? payeeFacts(intent) : ''}
    <dt>Current reference</dt>
    <dd class="mono">${view.attempts.at(-1)?.reference ?? ''}</dd>
    ${
      view.gatewayReference
        ? html`<dt>Sayswitch reference</dt>
            <dd class="mono">${view.gatewayReference}</dd>`
        : ''
    }
    ${
      view.message
        ? html`<dt>Gateway said</dt>
            <dd class="gateway-message">${view.message}</dd>`
        : ''
    }
    ${
      view.afterDataLoss
        ? html`<dt>Created after a data loss</dt>
            <dd>
              ${view.afterDataLoss}: its reference may predate the loss, so refusals are verified
            </dd>`
        : ''
    }
    ${
      view.authorizationUrl
        ? html`<dt>3-D Secure challenge</dt>
            <dd class="mono">${view.authorizationUrl}</dd>`
        : ''
    }
    ${
      view.batchId
        ? html`<dt>Batch</dt>
            <dd>
              <a href="${CONSOLE_PATH}/batches/${seg(view.batchId)}">${view.batchId}</a
              >${intent?.line !== undefined ? html` · line ${intent.line}` : ''}
            </dd>`
        : ''
    }
    ${
      view.subscriptionId
        ? html`<dt>Subscription</dt>
            <dd>
              <a href="${CONSOLE_PATH}/subscriptions/${seg(view.subscriptionId)}"
                >${view.subscriptionId}</a
              >
            </dd>`
        : ''
    }
    ${meta.map(
      ([k, v]) =>
        html`<dt>meta_${k}</dt>
          <dd class="meta">${v}</dd>`,
    )}
    <dt>Created</dt>
    <dd>${when(view.createdAt)}</dd>
    <dt>Updated</dt>
    <dd>${when(view.updatedAt)}</dd>
  </dl>`;
}

/** The timeline: every transition with its reason, attempt and any operator's resolution. */
export function timeline(view: PaymentView): Html {
  return html`<h2>Attempts</h2>
    <table>
      <thead>
        <tr>
          <th>Reference</th>
          <th>State</th>
        </tr>
      </thead>
      <tbody>
        ${view.attempts.map(
          (a) =>
            html`<tr>
              <td class="mono">${a.reference}</td>
              <td>${badge(a.state)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <h2>Timeline</h2>
    <ol class="timeline" id="timeline">
      ${view.history.map(
        (h) =>
          html`<li>
            <span>${when(h.at)}</span>
            <div>
              ${h.from ? html`${badge(h.from)} → ` : html`created `}${badge(h.to)}
              <span class="muted">attempt ${h.attempt}</span>
              ${h.reason ? html`<div class="reason">${h.reason}</div>` : ''}
              ${
                h.resolution
                  ? html`<div class="resolution">
                      Resolved by
                      <strong>${h.resolution.by}</strong>${h.resolution.forced ? ' (forced)' : ''};
                      Sayswitch said <strong>${h.resolution.gateway}</strong>. Note:
                      <q>${h.resolution.note}</q>
                    </div>`
                  : ''
              }
            </div>
          </li>`,
      )}
    </ol>`;
}

/** Registers the payment pages. */
export function registerPaymentPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const store = kit.deps.app.store;

  scope.get('/payments', HIDDEN, async (req, reply) => {
    const ctx: PageContext = kit.ctx(req, reply);
    const form = searchForm.safeParse(nonEmpty(req.query));
    // A field the form refuses (a search past 320 characters) is shown, with an empty form.
    const f: SearchForm = form.success ? form.data : {};
    let note: Html | string = form.success
      ? ''
      : html`<div class="flash error" role="alert">${issuesText(form.error.issues)}</div>`;
    let email: string | undefined;
    if (f.q !== undefined && f.q !== '') {
      const found = await findPayment(store, f.q);
      if (found) return reply.redirect(`${CONSOLE_PATH}/payments/${seg(found.key)}`, 303);
      if (f.q.includes('@')) email = f.q;
      else
        note = html`<div class="flash error" role="alert">
          No payment with key or reference <q>${withoutCardNumbers(f.q)}</q>.
        </div>`;
    }
    const query = paymentListQuerySchema.safeParse({
      ...(f.state ? { state: f.state } : {}),
      ...(f.type ? { type: f.type } : {}),
      ...(f.currency ? { currency: f.currency } : {}),
      ...(f.batch ? { batch: f.batch } : {}),
      ...(f.subscription ? { subscription: f.subscription } : {}),
      ...(email ? { email } : {}),
      ...(f.from ? { created_after: f.from } : {}),
      ...(f.to ? { created_before: `${f.to}T23:59:59.999Z` } : {}),
      ...(f.cursor ? { cursor: f.cursor } : {}),
      limit: PAGE_SIZE,
    });
    let results: Html = html``;
    if (note === '' && !query.success) {
      note = html`<div class="flash error" role="alert">${issuesText(query.error.issues)}</div>`;
    } else if (note === '' && query.success) {
      try {
        const list = await listPayments(store, query.data, req.log);
        const next = list.next_cursor
          ? html`<a href="${href(`${CONSOLE_PATH}/payments`, { ...f, cursor: list.next_cursor })}"
              >Next page →</a
            >`
          : '';
        results = html`${unreadableNote(list.unreadable)} ${paymentTable(list.data)}
          <div class="pager">
            ${f.cursor ? html`<a href="${href(`${CONSOLE_PATH}/payments`, { ...f, cursor: undefined })}">← First page</a>` : ''}
            ${next}
            ${
              list.next_cursor && list.data.length < PAGE_SIZE
                ? html`<span class="muted"
                    >(a page reads a bounded part of the index; more may match further on)</span
                  >`
                : ''
            }
          </div>`;
      } catch (err) {
        if (!(err instanceof RangeError)) throw err;
        note = html`<div class="flash error" role="alert">${err.message}</div>`;
      }
    }
    return kit.send(
      reply,
      page(ctx, 'payments', 'Payments', html`${searchFormHtml(f)}${note}${results}`),
    );
  });

  scope.get<{ Params: { key: string } }>('/payments/:key', HIDDEN, async (req, reply) => {
    const ctx = kit.ctx(req, reply);
    const view = await findPayment(store, req.params.key);
    if (!view) {
      return kit.send(
        reply,
        page(
          ctx,
          'payments',
          'Payment not found',
          html`<p>
            No payment with key or reference <q>${withoutCardNumbers(req.params.key)}</q>.
          </p>`,
        ),
        404,
      );
    }
    const intent = await store.get(view.key);
    const resolvable = view.state === 'needs_review' || view.state === 'unknown';
    const body = html`${paymentFacts(view, intent)}
    ${
      resolvable
        ? html`<p class="actions">
            <a class="button" href="${CONSOLE_PATH}/inbox/${seg(view.key)}">Review and resolve</a>
          </p>`
        : ''
    }
    ${timeline(view)}`;
    return kit.send(reply, page(ctx, 'payments', `Payment ${view.key}`, body));
  });
}
