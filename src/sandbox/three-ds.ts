/**
 * The `3ds2` card flow (docs/sayswitch-wire.md, "3-D Secure"): a charge answers the documented
 * challenge (`status: true`, "Proceed authentication 3DS2", HTML `data`, `_links`) and stays
 * pending, money unmoved, until the payer's page or `POST /__sandbox/3ds/{ref}/{action}` ends it,
 * or the challenge expires after `threeDsExpiryMs`. On completion the amount's outcome applies:
 * 51 declines, 52/53 settle later, anything else succeeds and the money moves.
 */
import type { Authentication, LedgerStore, StoredEntry } from './ledger.ts';
import type { Lifecycle } from './lifecycle.ts';
import type { Behaviour } from './outcomes.ts';
import type { TimerRegistry } from './timers.ts';
import { ABANDONED_RESPONSE, fail, major, type ApiResult } from './wire.ts';

export const THREE_DS_ACTIONS = ['complete', 'fail', 'abandon'] as const;
export type ThreeDsAction = (typeof THREE_DS_ACTIONS)[number];

/** Where the challenge lives; `_links.url` and `alt` point here. */
export const THREE_DS_PATH = '/__sandbox/3ds';

export interface ThreeDsDeps {
  ledger: LedgerStore;
  timers: TimerRegistry;
  lifecycle: Lifecycle;
  expiryMs: number;
  now: () => number;
}

/** A new challenge: what the charge will do once authentication completes. */
export interface Challenge {
  reference: string;
  amountMinor: number;
  currency: string;
  feeMinor: number;
  behaviour: Behaviour;
}

const AWAITING_RESPONSE = 'Awaiting 3DS authentication';

const ENDINGS: Record<ThreeDsAction | 'expire', Exclude<Authentication, 'awaiting'>> = {
  complete: 'completed',
  fail: 'failed',
  abandon: 'abandoned',
  expire: 'expired',
};

/** What a challenge that does not complete leaves in `gateway_response`. */
const FAILURE_RESPONSE: Record<Exclude<Authentication, 'awaiting' | 'completed'>, string> = {
  failed: 'Authentication failed',
  abandoned: ABANDONED_RESPONSE,
  expired: 'Authentication expired',
};

const escapeHtml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

export class ThreeDs {
  private readonly sessions = new Map<string, { behaviour: Behaviour; state: Authentication }>();

  constructor(private readonly deps: ThreeDsDeps) {}

  /** Records the charge as pending behind a challenge and starts the expiry clock. */
  start(c: Challenge): StoredEntry {
    const entry = this.deps.ledger.record(c.reference, {
      kind: 'charge',
      amount: c.amountMinor,
      currency: c.currency,
      status: 'pending',
      moneyMoved: false,
      feeMinor: c.feeMinor,
      gatewayResponse: AWAITING_RESPONSE,
      createdAtMs: this.deps.now(),
    });
    this.sessions.set(c.reference, { behaviour: c.behaviour, state: 'awaiting' });
    this.deps.ledger.noteAuthentication(c.reference, 'awaiting');
    this.deps.timers.after(this.deps.expiryMs, () => this.finish(c.reference, 'expire'));
    return entry;
  }

  /** Whether `ref` still waits for its payer (a duplicate echo answers the challenge again). */
  awaiting(ref: string): boolean {
    return this.sessions.get(ref)?.state === 'awaiting';
  }

  /** The documented initialize answer (S2 step 2). */
  challenge(ref: string, origin: string): ApiResult {
    return {
      status: 200,
      body: {
        status: true,
        message: 'Proceed authentication 3DS2',
        data: `<script id="initiate-authentication-script" data-reference="${escapeHtml(ref)}"></script>`,
        _links: { url: `${origin}${THREE_DS_PATH}/${ref}`, method: 'POST', payload: ['ref'] },
      },
    };
  }

  /** `POST {_links.url}` (S2 step 3): the payer-authentication answer, `alt` = the payer's page. */
  trigger(ref: string, payload: unknown, origin: string): ApiResult {
    if (!this.sessions.has(ref)) return fail(404, 'Transaction not found');
    const given = (payload as { ref?: unknown } | null | undefined)?.ref;
    if (given !== undefined && given !== ref) return fail(400, 'ref does not match the link');
    const page = `${origin}${THREE_DS_PATH}/${ref}`;
    const html =
      '<div id="threedsChallengeRedirect" style="height: 100vh">' +
      `<form id="threedsChallengeRedirectForm" method="GET" action="${escapeHtml(page)}" target="challengeFrame"></form>` +
      '<iframe id="challengeFrame" name="challengeFrame" width="100%" height="100%"></iframe>' +
      '<script id="authenticate-payer-script">var e=document.getElementById("threedsChallengeRedirectForm");' +
      'if (e) { e.submit(); if (e.parentNode !== null) { e.parentNode.removeChild(e); } }</script></div>';
    return {
      status: 200,
      body: { status: true, message: 'Proceed payer authentication', data: html, alt: page },
    };
  }

  /** The payer's page: the charge and three buttons; undefined for an unknown reference. */
  page(ref: string): string | undefined {
    const session = this.sessions.get(ref);
    const entry = this.deps.ledger.get(ref);
    if (!session || !entry) return undefined;
    const r = escapeHtml(ref);
    const buttons =
      session.state === 'awaiting'
        ? THREE_DS_ACTIONS.map(
            (a) =>
              `<form method="POST" action="${THREE_DS_PATH}/${r}/${a}"><button>${a}</button></form>`,
          ).join('')
        : `<p>Authentication ${session.state}.</p>`;
    return (
      '<!doctype html><html><head><meta charset="utf-8"><title>Sandbox 3-D Secure</title></head>' +
      `<body><h1>Sandbox 3-D Secure</h1><p>Reference <code>${r}</code>: ` +
      `${escapeHtml(major(entry.amount))} ${escapeHtml(entry.currency)}, ` +
      `status <b>${escapeHtml(entry.status)}</b>.</p>${buttons}</body></html>`
    );
  }

  /** `POST /__sandbox/3ds/{ref}/{action}`. */
  end(ref: string, action: ThreeDsAction): ApiResult {
    const session = this.sessions.get(ref);
    if (!session) return fail(404, 'No 3-D Secure challenge for this reference');
    if (session.state !== 'awaiting') return fail(409, `Challenge already ${session.state}`);
    this.finish(ref, action);
    return {
      status: 200,
      body: {
        success: true,
        reference: ref,
        authentication: session.state,
        status: this.deps.ledger.get(ref)?.status,
      },
    };
  }

  private finish(ref: string, how: ThreeDsAction | 'expire'): void {
    const session = this.sessions.get(ref);
    if (!session || session.state !== 'awaiting') return;
    const state = ENDINGS[how];
    session.state = state;
    this.deps.ledger.noteAuthentication(ref, state);
    const { lifecycle } = this.deps;
    if (state !== 'completed') {
      lifecycle.move(ref, 'failed', false, FAILURE_RESPONSE[state]);
      return;
    }
    switch (session.behaviour) {
      case 'decline':
        lifecycle.move(ref, 'failed', false, 'Declined');
        return;
      case 'pending_then_success':
        lifecycle.move(ref, 'pending', false);
        lifecycle.later(ref, 'success', true);
        return;
      case 'pending_then_failed':
        lifecycle.move(ref, 'pending', false);
        lifecycle.later(ref, 'failed', false);
        return;
      default:
        lifecycle.move(ref, 'success', true);
    }
  }
}
