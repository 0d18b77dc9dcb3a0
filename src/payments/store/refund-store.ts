/**
 * Refunds in Redis (docs/refunds.md): a refund is an intent in the intent store's layout (its
 * hash, history, state and created indexes), created by the reservation script of refund-lua.ts,
 * plus three keys per refunded charge: the list of its refunds, the caller keys that created them
 * and the one-in-flight slot.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { MAX_REFUNDS_PER_CHARGE, attemptReference, refundIntentKey } from '../../kernel/ids.ts';
import type { IntentState, IntentType } from '../../kernel/intent.ts';
import type { Intent, IntentHistoryEntry, RefundPayee } from '../../kernel/payment.ts';
import type {
  IntentStore,
  RefundReservation,
  RefundReservationResult,
  RefundStore,
} from '../../kernel/ports.ts';
import { storeKeys, type StoreKeys } from '../../infra/redis/keys.ts';
import { RESERVE_REFUND, TAKE_REFUND_SLOT } from './refund-lua.ts';

/** The keys of one charge's refunds, under the same prefix as its intent. */
function refundKeys(prefix: string, chargeKey: string) {
  return {
    list: `${prefix}:refunds:${chargeKey}`,
    callerKeys: `${prefix}:refunds:${chargeKey}:keys`,
    slot: `${prefix}:refunds:${chargeKey}:slot`,
  };
}

export class RedisRefundStore implements RefundStore {
  private readonly k: StoreKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /**
     * Reads intents (the charge, the refunds) with the one hash schema. Its data-loss view, when
     * it has one (RedisIntentStore's), marks refunds created while a loss is unacknowledged
     * `afterDataLoss`, as the intents it creates itself.
     */
    private readonly intents: IntentStore & { readonly dataLossUnacknowledged?: () => boolean },
  ) {
    this.k = storeKeys(prefix);
  }

  /** @inheritdoc */
  async reserve(req: RefundReservation): Promise<RefundReservationResult> {
    const rk = refundKeys(this.prefix, req.chargeKey);
    for (;;) {
      const charge = await this.intents.get(req.chargeKey);
      if (!charge) return { status: 'not_found' };
      const existing = await this.redis.zrange(rk.list, '0', '-1');
      const n = existing.length + 1;
      if (n > MAX_REFUNDS_PER_CHARGE) {
        // Still answer a repeated request by its caller key.
        const own = req.callerKey ? await this.redis.hget(rk.callerKeys, req.callerKey) : null;
        if (own === null) return { status: 'too_many' };
        return this.existingRefund(own, req);
      }
      const key = refundIntentKey(req.chargeKey, n);
      const payee: RefundPayee = {
        kind: 'refund',
        chargeKey: charge.key,
        chargeReference: charge.reference,
        chargedMinor: charge.amount,
        ...(req.reason !== undefined ? { reason: req.reason } : {}),
        requestedBy: req.requestedBy,
      };
      const fields: Record<string, string> = {
        key,
        type: 'refund' satisfies IntentType,
        origin: 'api',
        state: 'queued',
        attempt: '1',
        reference: attemptReference(key, 1),
        payee: JSON.stringify(payee),
        createdAt: String(req.now),
        updatedAt: String(req.now),
        checks: '0',
        enqueues: '1',
        unsentResubmits: '0',
        // Also how the script knows its own refund when a resend runs it twice (refund-lua.ts).
        incarnation: randomBytes(8).toString('hex'),
        requestHash: req.requestHash,
      };
      const history: IntentHistoryEntry = {
        at: req.now,
        from: null,
        to: 'queued',
        attempt: 1,
        requestedBy: req.requestedBy,
      };
      const res = (await RESERVE_REFUND.run(
        this.redis,
        8 + existing.length,
        this.k.intent(req.chargeKey),
        rk.list,
        rk.callerKeys,
        this.k.intent(key),
        this.k.history(key),
        this.k.byState('queued'),
        this.k.byCreated(),
        this.k.byCreated('refund'),
        ...existing.map((r) => this.k.intent(r)),
        key,
        String(n),
        JSON.stringify(fields),
        req.amount === undefined ? '' : String(req.amount),
        String(req.now),
        JSON.stringify(history),
        req.callerKey ?? '',
        String(MAX_REFUNDS_PER_CHARGE),
        this.intents.dataLossUnacknowledged?.() === true ? '1' : '',
        fields.incarnation as string,
      )) as string[];
      switch (res[0]) {
        case 'retry':
          continue;
        case 'created': {
          const intent = await this.intents.get(key);
          if (!intent) throw new Error(`refund ${key} vanished after create`);
          return { status: 'created', intent };
        }
        case 'existing':
          return this.existingRefund(res[1] as string, req);
        case 'not_found':
          return { status: 'not_found' };
        case 'not_refundable':
          return {
            status: 'not_refundable',
            type: res[1] as IntentType,
            state: res[2] as IntentState,
          };
        case 'exceeds':
          return {
            status: 'exceeds',
            chargedMinor: Number(res[1]),
            reservedMinor: Number(res[2]),
            requestedMinor: Number(res[3]),
          };
        case 'too_many':
          return { status: 'too_many' };
        default:
          throw new Error(`unexpected reservation answer ${String(res[0])}`);
      }
    }
  }

  private async existingRefund(
    key: string,
    req: Pick<RefundReservation, 'requestHash' | 'sameRequest'>,
  ) {
    const intent = await this.intents.get(key);
    if (!intent) throw new Error(`refund ${key} is listed but not stored`);
    const same = req.sameRequest
      ? req.sameRequest(intent.requestHash)
      : intent.requestHash === req.requestHash;
    return same ? { status: 'existing' as const, intent } : { status: 'conflict' as const, intent };
  }

  /** @inheritdoc */
  async refundsOf(chargeKey: string): Promise<Intent[]> {
    const keys = await this.redis.zrange(refundKeys(this.prefix, chargeKey).list, '0', '-1');
    const intents = await Promise.all(keys.map((k) => this.intents.get(k)));
    return intents.filter((i): i is Intent => i !== undefined);
  }

  /** @inheritdoc */
  async takeSlot(
    chargeKey: string,
    refundKey: string,
  ): Promise<{ ok: true } | { ok: false; holder: string; state: string }> {
    const { slot } = refundKeys(this.prefix, chargeKey);
    for (;;) {
      const holder = await this.redis.get(slot);
      const res = (await TAKE_REFUND_SLOT.run(
        this.redis,
        2,
        slot,
        this.k.intent(holder ?? refundKey),
        refundKey,
        holder ?? '',
      )) as string[];
      if (res[0] === 'ok') return { ok: true };
      if (res[0] === 'busy')
        return { ok: false, holder: res[1] as string, state: res[2] as string };
    }
  }
}
