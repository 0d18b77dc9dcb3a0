/**
 * Subscriptions (`/console/subscriptions`): the list by status, and one subscription's status,
 * next charge, billed periods and recent charges, dunning, with pause / resume / cancel / retry as
 * forms calling the service of `POST /subscriptions/:id/{pause,resume,cancel,retry}` (subscriptions/manage.ts,
 * bodies checked by subscriptions/patch-input.ts as the HTTP route checks them).
 */
import { emailSchema } from '../input/fields.ts';
import { withoutCardNumbers } from '../kernel/card-number.ts';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { parseCancelBody, parsePauseBody } from '../subscriptions/patch-input.ts';
import { SUBSCRIPTION_STATUSES } from '../subscriptions/record.ts';
import {
  actionRefusalMessage,
  applyAction,
  listSubscriptions,
  PAST,
  patchSubscription,
  REFUSAL_ERROR_CODE,
  showSubscription,
  type ActionName,
  type ActionOptions,
  type SubscriptionView,
} from '../subscriptions/service.ts';
import { badge, href, html, money, seg, when, type Html } from './html.ts';
import { HIDDEN, type ConsoleKit } from './kit.ts';
import { csrfField, page, type PageContext } from './layout.ts';
import { CONSOLE_PATH } from './paths.ts';

const ACTIONS: readonly ActionName[] = ['pause', 'resume', 'cancel', 'retry'];
const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const listForm = z.object({
  status: z.enum(SUBSCRIPTION_STATUSES).optional().catch(undefined),
  email: z.string().trim().max(400).optional().catch(undefined),
  cursor: z.string().max(200).optional().catch(undefined),
});

const every = (s: SubscriptionView) =>
  `every ${s.interval_count === 1 ? '' : `${s.interval_count} `}${s.interval}${s.interval_count === 1 ? '' : 's'}`;

/**
 * In its trial: nothing billed yet, the first period starts when the trial ends, and that is
 * ahead (on a test clock, the service decides against the clock's time).
 */
const inTrial = (s: SubscriptionView, now: number) =>
  s.trial_end !== null &&
  s.next_period_start === s.trial_end &&
  s.current_period_end === null &&
  (s.test_clock !== null || Date.parse(s.trial_end) > now);

function forms(ctx: PageContext, s: SubscriptionView, now: number): Html {
  if (!ctx.canWrite || s.status === 'canceled') return html``;
  const base = `${CONSOLE_PATH}/subscriptions/${seg(s.id)}`;
  return html`<div class="actions">
    ${
      s.status !== 'paused'
        ? html`<form class="action" method="post" action="${base}/pause">
            ${csrfField(ctx)}
            <label
              >Resume by itself at (optional, ISO 8601)
              <input name="resume_at" placeholder="2027-01-01T00:00:00Z"
            /></label>
            <button type="submit">Pause</button>
          </form>`
        : html`<form class="action" method="post" action="${base}/resume">
            ${csrfField(ctx)}<button type="submit">Resume</button>
          </form>`
    }
    ${
      inTrial(s, now)
        ? html`<form class="action" method="post" action="${base}/end-trial">
            ${csrfField(ctx)}<button type="submit">End the trial now</button>
          </form>`
        : ''
    }
    ${
      s.dunning.length > 0 && s.status !== 'paused'
        ? html`<form class="action" method="post" action="${base}/retry">
            ${csrfField(ctx)}<button type="submit">Retry the failed renewal now</button>
          </form>`
        : ''
    }
    <form class="action" method="post" action="${base}/cancel">
      ${csrfField(ctx)}
      <label class="check"
        ><input type="checkbox" name="at_period_end" value="true" /> at the end of the period paid
        for</label
      >
      <button type="submit" class="danger">Cancel subscription</button>
    </form>
  </div>`;
}

function detail(s: SubscriptionView): Html {
  return html`<dl class="facts">
      <dt>Status</dt>
      <dd>${badge(s.status)}${s.cancel_reason ? html` · ${s.cancel_reason}` : ''}</dd>
      <dt>Customer</dt>
      <dd>${s.customer_email}</dd>
      <dt>Price</dt>
      <dd>${money(s.amount_minor, s.currency)} ${every(s)} (${s.timezone})</dd>
      <dt>Next charge</dt>
      <dd>${when(s.next_charge_at)}</dd>
      <dt>Current period (last paid)</dt>
      <dd>
        ${s.current_period_start ? html`${when(s.current_period_start)} → ${when(s.current_period_end)}` : html`<span class="muted">none yet</span>`}
      </dd>
      <dt>Next period to bill</dt>
      <dd>${when(s.next_period_start)}</dd>
      <dt>Periods skipped</dt>
      <dd>${s.skipped_periods}</dd>
      ${
        s.trial_end
          ? html`<dt>Trial ends</dt>
              <dd>${when(s.trial_end)}</dd>`
          : ''
      }
      ${
        s.cancel_at
          ? html`<dt>Cancels at</dt>
              <dd>${when(s.cancel_at)}</dd>`
          : ''
      }
      ${
        s.resume_at
          ? html`<dt>Resumes at</dt>
              <dd>${when(s.resume_at)}</dd>`
          : ''
      }
      ${
        s.billing_held
          ? html`<dt>Billing held</dt>
              <dd>
                by
                <a href="${CONSOLE_PATH}/payments/${seg(s.billing_held.key)}"
                  >${s.billing_held.key}</a
                >
                (${s.billing_held.state}, waiting for the ${s.billing_held.awaiting}) since
                ${when(s.billing_held.since)}
              </dd>`
          : ''
      }
      ${
        s.test_clock
          ? html`<dt>Test clock</dt>
              <dd>${s.test_clock}</dd>`
          : ''
      }
      ${Object.entries(s.metadata).map(
        ([k, v]) =>
          html`<dt>metadata.${k}</dt>
            <dd>${v}</dd>`,
      )}
      <dt>Created</dt>
      <dd>${when(s.created_at)}</dd>
    </dl>
    <h2>Dunning</h2>
    ${
      s.dunning.length === 0
        ? html`<p class="muted">No open dunning.</p>`
        : html`<table>
            <thead>
              <tr>
                <th>Charge</th>
                <th class="num">Attempt</th>
                <th class="num">Retry</th>
                <th>Retry at</th>
                <th>Reason</th>
              </tr>
            </thead>
            <tbody>
              ${s.dunning.map(
                (d) =>
                  html`<tr>
                    <td><a href="${CONSOLE_PATH}/payments/${seg(d.key)}">${d.key}</a></td>
                    <td class="num">${d.attempt}</td>
                    <td class="num">${d.retry}</td>
                    <td>${when(d.retry_at)}</td>
                    <td>${d.reason}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
    <h2>Periods billed (recent charges)</h2>
    ${
      (s.charges ?? []).length === 0
        ? html`<p class="muted">No charges yet.</p>`
        : html`<table>
            <thead>
              <tr>
                <th>Charge</th>
                <th>State</th>
                <th class="num">Attempt</th>
                <th>Reason</th>
              </tr>
            </thead>
            <tbody>
              ${(s.charges ?? []).map(
                (c) =>
                  html`<tr>
                    <td>
                      <a class="mono" href="${CONSOLE_PATH}/payments/${seg(c.key)}">${c.key}</a>
                    </td>
                    <td>${badge(c.state)}</td>
                    <td class="num">${c.attempt}</td>
                    <td>${c.reason ?? ''}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }`;
}

/** Registers the subscription pages and actions. */
export function registerSubscriptionPages(scope: FastifyInstance, kit: ConsoleKit): void {
  const deps = kit.deps.subs;
  /** The flash of a service answer no action took: no such subscription, or invalid input. */
  const unanswered = (
    reply: FastifyReply,
    id: string,
    res: { status: 'not_found' } | { status: 'invalid'; issues: readonly { message: string }[] },
  ) =>
    res.status === 'not_found'
      ? kit.done(reply, `${CONSOLE_PATH}/subscriptions`, {
          kind: 'error',
          text: `No subscription ${id}.`,
        })
      : kit.done(reply, `${CONSOLE_PATH}/subscriptions/${seg(id)}`, {
          kind: 'error',
          text: res.issues.map((i) => i.message).join('; '),
        });

  scope.get('/subscriptions', HIDDEN, async (req, reply) => {
    const ctx = kit.ctx(req, reply);
    const f = listForm.parse(req.query ?? {});
    const email = f.email ? emailSchema('email').safeParse(f.email) : undefined;
    const list =
      email && !email.success
        ? { items: [] }
        : await listSubscriptions(deps, {
            ...(f.status ? { status: f.status } : {}),
            ...(email?.success ? { customerEmail: email.data } : {}),
            ...(f.cursor ? { after: f.cursor } : {}),
            limit: 50,
          });
    const body = html`${
        email && !email.success
          ? html`<div class="flash error" role="alert">
              ${email.error.issues[0]?.message ?? 'email is not valid'}
            </div>`
          : ''
      }
      <form class="filters" method="get" action="${CONSOLE_PATH}/subscriptions">
        <label
          >customer email
          <input name="email" type="search" value="${f.email ?? ''}" placeholder="ada@example.com"
        /></label>
        <label
          >status
          <select name="status">
            <option value="">any</option>
            ${SUBSCRIPTION_STATUSES.map((s) => html`<option value="${s}" ${s === f.status ? html`selected` : ''}>${s}</option>`)}
          </select></label
        ><button type="submit">Filter</button>
      </form>
      ${
        list.items.length === 0
          ? html`<p class="muted">No subscriptions.</p>`
          : html`<table class="subscriptions">
              <thead>
                <tr>
                  <th>Subscription</th>
                  <th>Customer</th>
                  <th class="num">Price</th>
                  <th>Interval</th>
                  <th>Status</th>
                  <th>Next charge</th>
                  <th>Paid until</th>
                  <th class="num">Dunning</th>
                </tr>
              </thead>
              <tbody>
                ${list.items.map(
                  (s) =>
                    html`<tr>
                      <td><a href="${CONSOLE_PATH}/subscriptions/${seg(s.id)}">${s.id}</a></td>
                      <td>${s.customer_email}</td>
                      <td class="num">${money(s.amount_minor, s.currency)}</td>
                      <td>${every(s)}</td>
                      <td>
                        ${badge(s.status)}
                        ${
                          s.cancel_at
                            ? html`<span class="muted">cancels ${when(s.cancel_at)}</span>`
                            : ''
                        }
                        ${
                          s.billing_held
                            ? html`<span class="muted">held: ${s.billing_held.awaiting}</span>`
                            : ''
                        }
                      </td>
                      <td>${when(s.next_charge_at)}</td>
                      <td>${when(s.current_period_end)}</td>
                      <td class="num">${s.dunning.length}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
      ${'next' in list && list.next ? html`<p class="pager"><a href="${href(`${CONSOLE_PATH}/subscriptions`, { status: f.status, email: email?.success ? email.data : undefined, cursor: list.next })}">Next page →</a></p>` : ''}`;
    return kit.send(reply, page(ctx, 'subscriptions', 'Subscriptions', body));
  });

  scope.get<{ Params: { id: string } }>('/subscriptions/:id', HIDDEN, async (req, reply) => {
    const ctx = kit.ctx(req, reply);
    const s = await showSubscription(deps, req.params.id);
    if (!s) {
      return kit.send(
        reply,
        page(
          ctx,
          'subscriptions',
          'Subscription not found',
          html`<p>No subscription <q>${withoutCardNumbers(req.params.id)}</q>.</p>`,
        ),
        404,
      );
    }
    return kit.send(
      reply,
      page(
        ctx,
        'subscriptions',
        `Subscription ${s.id}`,
        html`${forms(ctx, s, deps.clock.now())}${detail(s)}`,
      ),
    );
  });

  // PATCH trial_end=now (subscriptions/changes.ts `moveTrial`): the next tick bills period 0.
  scope.post<{ Params: { id: string } }>(
    '/subscriptions/:id/end-trial',
    HIDDEN,
    async (req, reply) => {
      const id = req.params.id;
      const back = `${CONSOLE_PATH}/subscriptions/${seg(id)}`;
      const res = await patchSubscription(deps, id, { trial_end: 'now' });
      switch (res.status) {
        case 'not_found':
        case 'invalid':
          return unanswered(reply, id, res);
        case 'refused':
          return kit.done(reply, back, {
            kind: 'error',
            text: `Subscription ${id} cannot end its trial now (${REFUSAL_ERROR_CODE[res.code]}).`,
          });
        case 'ok':
          return kit.done(reply, back, {
            kind: 'ok',
            text: `Subscription ${id}: the trial ended; the first charge is created at the next tick.`,
          });
      }
    },
  );

  for (const action of ACTIONS) {
    scope.post<{ Params: { id: string }; Body: Record<string, unknown> }>(
      `/subscriptions/:id/${action}`,
      HIDDEN,
      async (req, reply) => {
        const id = req.params.id;
        const back = `${CONSOLE_PATH}/subscriptions/${seg(id)}`;
        const form = req.body ?? {};
        let opts: ActionOptions = {};
        if (action === 'pause' && form.resume_at) {
          const body = parsePauseBody({ resume_at: form.resume_at });
          if (!body.ok)
            return kit.done(reply, back, {
              kind: 'error',
              text: body.issues.map((i) => `${i.field ?? ''}: ${i.message}`).join('; '),
            });
          if (body.resumeAt !== undefined) opts = { resumeAt: body.resumeAt };
        } else if (action === 'cancel') {
          // A form sends the string; a bearer-token client may post JSON's boolean. Anything
          // else is refused by the parser (before, a JSON `true` canceled at once).
          const raw = form.at_period_end;
          const atPeriodEnd =
            raw === true || raw === 'true'
              ? true
              : raw === undefined || raw === false || raw === 'false'
                ? false
                : raw;
          const body = parseCancelBody({ at_period_end: atPeriodEnd });
          if (!body.ok)
            return kit.done(reply, back, {
              kind: 'error',
              text: body.issues.map((i) => `${i.field ?? ''}: ${i.message}`).join('; '),
            });
          if (body.atPeriodEnd !== undefined) opts = { atPeriodEnd: body.atPeriodEnd };
        }
        const res = await applyAction(deps, id, action, opts);
        switch (res.status) {
          case 'not_found':
          case 'invalid':
            return unanswered(reply, id, res);
          case 'refused':
            return kit.done(reply, back, {
              kind: 'error',
              text: `${capitalized(actionRefusalMessage(id, action, res.code))}.`,
            });
          case 'ok':
            return kit.done(reply, back, {
              kind: 'ok',
              text: `Subscription ${id} ${res.changed ? PAST[action] : `unchanged (${action === 'retry' ? 'its retry is already due' : `already ${res.subscription.status}`})`}; status ${res.subscription.status}.`,
            });
        }
      },
    );
  }
}
