/**
 * The `notifications.deliver` handler: POSTs one event of `<prefix>:events` to NOTIFY_URL,
 * signed per Standard Webhooks (`webhook-id` is the event id, the same on every retry) and, for one
 * more release, with the legacy `X-Billing-Signature` (see signature.ts). A 2xx completes the job; any other answer, or no answer, throws a
 * RetryableError so the processor wrapper rethrows it and BullMQ retries on the configured
 * schedule. Each try is one BullMQ attempt, so the dashboard shows them.
 *
 * The body is built from the event the job carries (the relay copies the entry's fields into it),
 * never from the stream on a retry: MAXLEN trims the stream, and a retry a day later would find
 * nothing to send. A job added before the event was carried reads the entry, as it always did.
 */
import type { Readable } from 'node:stream';
import axios, { type AxiosInstance } from 'axios';
import { FatalError, RetryableError } from '../kernel/errors.ts';
import type { EventLog } from '../kernel/ports.ts';
import type { Handler } from '../infra/queues/processor.ts';
import { SIGNATURE_HEADER, signNotification, standardWebhookSigner } from './signature.ts';

export interface DeliverDeps {
  events: Pick<EventLog, 'entry'>;
  /** NOTIFY_URL. */
  url: string;
  /** NOTIFY_SECRET: used to sign, never logged or put in an error. */
  secret: string;
  /** NOTIFY_SECRET_PREVIOUS: during a rotation, a second signature beside the first (same care). */
  previousSecret?: string;
  /** Current time, epoch ms (the signature's timestamp). */
  now: () => number;
  /** Bound on the whole request. Default 10 000 (below the catalog's 30 s handler timeout). */
  timeoutMs?: number;
}

/** The JSON body a receiver gets. `id` is unique per fact: receivers de-duplicate on it. */
export interface NotificationBody {
  id: string;
  type: string;
  /** When the event happened, ISO 8601 UTC. */
  at: string;
  data: Record<string, unknown>;
}

/**
 * Shapes a stream entry's fields (`id`, `type`, `at` in epoch ms, `data` as JSON, all strings as
 * XADD wrote them, or a job's copy of them) as the body: the one place the body is made.
 */
export function notificationOf(f: Partial<Record<string, string>>): NotificationBody {
  return {
    id: f.id ?? '',
    type: f.type ?? '',
    at: new Date(Number(f.at)).toISOString(),
    data: JSON.parse(f.data ?? '{}') as Record<string, unknown>,
  };
}

/** Reads one stream entry and shapes it as the body; undefined when it is no longer there. */
export async function readNotification(
  events: Pick<EventLog, 'entry'>,
  streamId: string,
): Promise<NotificationBody | undefined> {
  const f = await events.entry(streamId);
  return f ? notificationOf(f) : undefined;
}

function httpClient(timeoutMs: number): AxiosInstance {
  return axios.create({
    timeout: timeoutMs,
    // Every status is ours to judge; a non-2xx is a retry, never an axios exception.
    validateStatus: () => true,
    // A redirect would send a signed event somewhere the merchant did not configure.
    maxRedirects: 0,
    // The body is signed as a string; it must go out byte for byte.
    transformRequest: [(data: unknown) => data],
    // The answer's body is ignored: only the status decides. Read as a stream and dropped once
    // the status is in, so a large or never-ending body cannot turn a 2xx into a failed attempt
    // (it did when the body was read whole: over 1 MiB, or still coming at the timeout).
    responseType: 'stream',
    // An environment proxy must not silently sit between us and the merchant.
    proxy: false,
  });
}

/** Builds the handler for `notifications.deliver`. */
export function createDeliverHandler(deps: DeliverDeps): Handler<'notifications.deliver'> {
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const http = httpClient(timeoutMs);
  const signer = standardWebhookSigner(deps.secret, deps.previousSecret);

  return async ({ eventId, streamId, event: carried }, { job, log }) => {
    const attempt = job.attemptsMade + 1;
    // The relay's copy of the entry; only jobs added before it carried one read the stream.
    const event = carried
      ? notificationOf({ ...carried, id: eventId })
      : await readNotification(deps.events, streamId);
    if (!event || event.id !== eventId) {
      // An old job whose entry was trimmed (MAXLEN) or a stale one: retrying cannot bring it back.
      log.error({ eventId, streamId, attempt }, 'event no longer in the stream; not delivered');
      throw new FatalError('event no longer in the stream', 'notify_event_missing');
    }
    const body = JSON.stringify(event);
    const started = deps.now();
    let status: number | undefined;
    try {
      const res = await http.post(deps.url, body, {
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'sayswitch-billing-notify',
          ...signer.headers(event.id, body, started / 1000),
          // Deprecated: kept for one release so receivers can move to the headers above.
          [SIGNATURE_HEADER]: signNotification(
            body,
            deps.secret,
            started / 1000,
            deps.previousSecret,
          ),
        },
        // axios' `timeout` is a socket-idle timer; this bounds the whole call.
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      (res.data as Readable).destroy();
    } catch (err) {
      // Only the error code travels: the axios error holds the request config (URL, headers).
      const code = (err as { code?: unknown }).code;
      log.warn(
        {
          eventId,
          type: event.type,
          status: null,
          attempt,
          code,
          durationMs: deps.now() - started,
        },
        'notification not delivered: no response',
      );
      throw new RetryableError(
        `notification endpoint did not answer (${typeof code === 'string' ? code : 'error'})`,
        'notify_unreachable',
      );
    }
    const fields = { eventId, type: event.type, status, attempt, durationMs: deps.now() - started };
    if (status >= 200 && status < 300) {
      log.info(fields, 'notification delivered');
      return { status };
    }
    log.warn(fields, 'notification refused');
    throw new RetryableError(`notification endpoint answered ${status}`, 'notify_refused');
  };
}
