/**
 * What both halves of the error mapping (transport-errors.ts, response-errors.ts) know about a
 * call, and the sanitised cause they attach. This folder is THE one place that turns what happened
 * on the wire into the four error kinds (docs/sayswitch-wire.md "Error kinds"); the adapter's
 * other modules construct no error of their own.
 */

/** What the call was: decides how an ambiguous answer reads. */
export type Operation =
  /** Moves money (charge, payout): ambiguity means money may have moved. */
  | 'submission'
  /** Looks a reference up (verify, payout lookup): 404 is an answer. */
  | 'lookup'
  /** Moves no money (banks, account name, wallet). */
  | 'read';

export interface CallContext {
  /** Method and path template, e.g. `POST /api/v1/bank_transfer`. Never contains a body. */
  endpoint: string;
  operation: Operation;
  /** The attempt reference for submissions and lookups. */
  reference?: string;
}

/**
 * A cause that keeps only what is safe to log: the error code and, if any, the HTTP status. The
 * raw axios error is never attached, because it carries the request config and headers (the key).
 */
export class TransportFault extends Error {
  readonly code: string;
  readonly httpStatus: number | undefined;
  constructor(code: string, httpStatus?: number) {
    super(httpStatus === undefined ? code : `${code} (HTTP ${httpStatus})`);
    this.name = 'TransportFault';
    this.code = code;
    this.httpStatus = httpStatus;
  }
}
