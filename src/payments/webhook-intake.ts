/**
 * Intake of a Sayswitch webhook that passed its signature check: it is never trusted as the
 * outcome. It only triggers a reconcile check of the reference, which re-verifies through the
 * API. Duplicated, replayed and reordered webhooks therefore converge on the same final state; a
 * webhook that arrives before its intent is written is kept (as a retried job) until it exists.
 */
import { parseAttemptReference } from '../kernel/ids.ts';
import type { Logger } from '../infra/logger.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { IntentStore } from '../kernel/ports.ts';
import type { WebhookEvent } from '../infra/gateway/sayswitch/webhook.ts';

export interface IntakeDeps {
  store: IntentStore;
  dispatcher: Dispatcher;
  logger: Logger;
}

export type IntakeResult = 'enqueued' | 'early' | 'ignored';

/** Enqueues a reconcile check for the webhook's reference, de-duplicated by job id. */
export async function takeWebhook(deps: IntakeDeps, event: WebhookEvent): Promise<IntakeResult> {
  if (event.kind === 'unsupported') {
    deps.logger.info({ reason: event.reason }, 'webhook ignored: unsupported');
    return 'ignored';
  }
  const parsed = parseAttemptReference(event.reference);
  if (!parsed) {
    deps.logger.info(
      { reference: event.reference.slice(0, 64) },
      'webhook ignored: not one of our references',
    );
    return 'ignored';
  }
  const intent = await deps.store.get(parsed.key);
  if (!intent) {
    await deps.dispatcher.reconcileEarly(parsed.key, event.reference);
    deps.logger.info(
      { key: parsed.key, reference: event.reference },
      'webhook before its intent: kept for retry',
    );
    return 'early';
  }
  await deps.dispatcher.reconcile(intent, { delayMs: 0, cause: 'webhook', claimed: event.status });
  deps.logger.info(
    {
      key: intent.key,
      reference: event.reference,
      kind: event.kind,
      claimed: event.status,
      state: intent.state,
    },
    'webhook received: verifying',
  );
  return 'enqueued';
}
