/**
 * The review inbox (`/console/inbox`): payments a person must look at — `needs_review`, `unknown`
 * older than RESOLVE_UNKNOWN_AFTER (younger ones the reconciler is still checking), and
 * `requires_action` (waiting for the customer's 3-D Secure challenge; shown, not resolvable). One
 * payment's review page asks Sayswitch what it says now and carries the resolve form, which calls
 * the operator API's resolution (payments/resolve.ts) with the same body rules as
 * `POST /payments/:key/resolve` and the operator's identity as `by`.
 */
import { withoutCardNumbers } from '../kernel/card-number.ts';
import type { FastifyInstance } from 'fastify';
import { resolveBodySchema } from '../http/routes/payments-resolve.ts';
import { UnreadableRecordError } from '../kernel/errors.ts';
import {
  listPayments,
  reportUnlisted,
  toSummary,
  type UnreadablePayment,
} from '../payments/list.ts';
import { askGateway, resolvePayment, RESOLVE_OUTCOMES } from '../payments/resolve.ts';
import { findPayment } from '../payments/view.ts';
import { badge, html, seg } from './html.ts';
import { HIDDEN, type ConsoleKit } from './kit.ts';
import { csrfField, page } from './layout.ts';
import { CONSOLE_PATH } from './paths.ts';
import {
  issuesText,
  paymentFacts,
  paymentTable,
  timeline,
  unreadableNote,
} from './payments-pages.ts';

const INBOX_LIMIT = 100;

/** Registers the inbox, the review page and the resolve action. */
export function registerInboxPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const { store, clock } = kit.deps.app;
  const thresholdMs = kit.deps.resolve.unknownResolvableAfterMs;

  scope.get('/inbox', HIDDEN, async (req, reply) => {
    const ctx = kit.ctx(req, reply);
    const cutoff = clock.now() - thresholdMs;
    const [review, action, staleKeys, counts] = await Promise.all([
      listPayments(store, { state: 'needs_review', limit: INBOX_LIMIT }, req.log),
      listPayments(store, { state: 'requires_action', limit: INBOX_LIMIT }, req.log),
      // Oldest first, by when they became unknown: the ones a person may resolve.
      store.keysUpdatedBefore('unknown', cutoff, INBOX_LIMIT + 1),
      store.countByState(),
    ]);
    const staleUnreadable: UnreadablePayment[] = [];
    const staleIntents = await Promise.all(
      staleKeys.slice(0, INBOX_LIMIT).map((k) =>
        store.get(k).catch((err: unknown) => {
          if (!(err instanceof UnreadableRecordError)) throw err;
          staleUnreadable.push(reportUnlisted(req.log, err));
          return undefined;
        }),
      ),
    );
    const stale = staleIntents.flatMap((i) => (i ? [toSummary(i)] : []));
    const younger =
      staleKeys.length > INBOX_LIMIT
        ? 0
        : Math.max(0, counts.unknown - stale.length - staleUnreadable.length);
    const more = (next: string | null) =>
      next
        ? html`<p class="muted">
            More than shown: narrow it in <a href="${CONSOLE_PATH}/payments">Payments</a>.
          </p>`
        : '';
    const body = html` <section id="needs-review">
        <h2>Needs review ${badge(String(counts.needs_review))}</h2>
        <p class="muted">
          The reconciler gave up asking Sayswitch. Resolve each after checking with the gateway.
        </p>
        ${unreadableNote(review.unreadable)} ${paymentTable(review.data, { review: true })}
        ${more(review.next_cursor)}
      </section>
      <section id="unknown">
        <h2>
          Unknown for more than ${Math.round(thresholdMs / 1000)} s
          ${badge(staleKeys.length > INBOX_LIMIT ? `${INBOX_LIMIT}+` : String(stale.length))}
        </h2>
        ${younger > 0 ? html`<p class="muted">${younger} younger unknown payments are still being checked by the reconciler.</p>` : ''}
        ${unreadableNote(staleUnreadable)} ${paymentTable(stale, { review: true })}
        ${more(staleKeys.length > INBOX_LIMIT ? 'more' : null)}
      </section>
      <section id="requires-action">
        <h2>Waiting for the customer (3-D Secure) ${badge(String(counts.requires_action))}</h2>
        <p class="muted">
          Nothing has moved; they end by themselves when the challenge is completed or its window
          ends.
        </p>
        ${unreadableNote(action.unreadable)} ${paymentTable(action.data)}
        ${more(action.next_cursor)}
      </section>`;
    return kit.send(reply, page(ctx, 'inbox', 'Review inbox', body));
  });

  scope.get<{ Params: { key: string } }>('/inbox/:key', HIDDEN, async (req, reply) => {
    const ctx = kit.ctx(req, reply);
    const view = await findPayment(store, req.params.key);
    const intent = view ? await store.get(view.key) : undefined;
    if (!view || !intent) {
      return kit.send(
        reply,
        page(
          ctx,
          'inbox',
          'Payment not found',
          html`<p>No payment <q>${withoutCardNumbers(req.params.key)}</q>.</p>`,
        ),
        404,
      );
    }
    const resolvable =
      intent.state === 'needs_review' ||
      (intent.state === 'unknown' && clock.now() - intent.updatedAt >= thresholdMs);
    // Asked on every view of this page (one rate-limited lookup), never for the whole inbox.
    const gateway = resolvable ? await askGateway(kit.deps.resolve, intent) : undefined;
    const form = !resolvable
      ? html`<p class="flash error">
          This payment is ${view.state}: only needs_review, or unknown for longer than
          ${Math.round(thresholdMs / 1000)} s, can be resolved.
        </p>`
      : !ctx.canWrite
        ? html`<p class="muted">Read-only: resolving needs write access.</p>`
        : html`<form
            class="action"
            id="resolve"
            method="post"
            action="${CONSOLE_PATH}/payments/${seg(view.key)}/resolve"
          >
            ${csrfField(ctx)}
            <fieldset>
              <legend>What happened to the money?</legend>
              ${RESOLVE_OUTCOMES.map(
                (o) =>
                  html`<label class="check"
                    ><input
                      type="radio"
                      name="outcome"
                      value="${o}"
                      required
                      ${o === gateway?.word ? html`checked` : ''}
                    />
                    ${o}</label
                  >`,
              )}
            </fieldset>
            <label
              >Note (required: what you checked)
              <textarea name="note" rows="3" cols="60" required maxlength="1000"></textarea>
            </label>
            <label class="check"
              ><input type="checkbox" name="force" value="true" /> Override Sayswitch (force) when
              it disagrees or has no final answer</label
            >
            <button type="submit">Resolve</button>
          </form>`;
    const body = html` <section id="gateway-now">
        <h2>What Sayswitch says now</h2>
        ${
          gateway
            ? html`<p>
                Sayswitch says <strong class="gateway-word">${gateway.word}</strong> for
                <code>${intent.reference}</code>
                ${gateway.outcome && 'message' in gateway.outcome && gateway.outcome.message ? html` — <q>${gateway.outcome.message}</q>` : ''}.
              </p>`
            : html`<p class="muted">Not asked: the payment is not resolvable.</p>`
        }
      </section>
      ${form}
      <h2>Payment</h2>
      ${paymentFacts(view, intent)} ${timeline(view)}`;
    return kit.send(reply, page(ctx, 'inbox', `Review ${view.key}`, body));
  });

  scope.post<{ Params: { key: string }; Body: Record<string, string> }>(
    '/payments/:key/resolve',
    HIDDEN,
    async (req, reply) => {
      const key = req.params.key;
      const back = `${CONSOLE_PATH}/inbox/${seg(key)}`;
      const form = req.body ?? {};
      const body = resolveBodySchema.safeParse({
        ...(form.outcome !== undefined ? { outcome: form.outcome } : {}),
        note: form.note ?? '',
        force: form.force === 'true',
      });
      if (!body.success)
        return kit.done(reply, back, { kind: 'error', text: issuesText(body.error.issues) });
      const res = await resolvePayment(kit.deps.resolve, key, { ...body.data, by: kit.who(req) });
      switch (res.status) {
        case 'not_found':
          return kit.done(reply, back, { kind: 'error', text: `No payment ${key}.` });
        case 'not_resolvable':
        case 'gateway_disagrees':
        case 'gateway_unconfirmed':
          return kit.done(reply, back, { kind: 'error', text: res.message });
        case 'resolved':
          return kit.done(reply, `${CONSOLE_PATH}/payments/${seg(res.intent.key)}`, {
            kind: 'ok',
            text: `Payment ${res.intent.key} resolved as ${res.intent.state}${res.forced ? ' (forced)' : ''}; Sayswitch said ${res.gateway}.`,
          });
      }
    },
  );
}
