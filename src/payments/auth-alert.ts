/**
 * What a 401/403 from Sayswitch does: our credentials are wrong for every job, so the queue is
 * paused (no job burns its attempts on a refusal) and one `alert.gateway_auth_failed` event per
 * queue and minute is published, however many jobs hit the refusal at once. An operator fixes the
 * key and resumes the queue (docs/operations.md).
 */
import type { Clock } from '../kernel/clock.ts';
import type { BillingError } from '../kernel/errors.ts';
import type { EventLog } from '../kernel/ports.ts';
import type { Dispatcher } from '../infra/queues/dispatcher.ts';
import type { QueueName } from '../infra/queues/names.ts';

/** How long the once-per-minute de-duplication marker of an alert is kept. */
const ALERT_MARKER_TTL_SEC = 3_600;

export function authFailureAlert(deps: {
  dispatcher: Pick<Dispatcher, 'pause'>;
  events: Pick<EventLog, 'appendOnce'>;
  clock: Clock;
}): (queue: QueueName, err: BillingError) => Promise<void> {
  return async (queue, err) => {
    const now = deps.clock.now();
    const minute = Math.floor(now / 60_000);
    await deps.events.appendOnce(
      {
        id: `evt_alert_auth_${queue}_${minute}`,
        type: 'alert.gateway_auth_failed',
        at: now,
        data: { queue, code: err.code, action: 'queue paused; fix credentials, then resume it' },
      },
      ALERT_MARKER_TTL_SEC,
    );
    // Paused after the alert is written: a queue is never seen paused without its alert.
    await deps.dispatcher.pause(queue);
  };
}
