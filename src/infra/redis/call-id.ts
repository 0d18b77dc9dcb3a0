/**
 * Call ids: how a Lua script tells its own call, run a second time, from any other call. ioredis
 * resends a command whose reply a dropped connection lost (autoResendUnfulfilledCommands, its
 * default; the cluster client after a failover), so a script can run twice for one call and the
 * caller sees only the second reply. A script that stores the id of the call that wrote and finds
 * its own id there answers as its first run did. The one generator of these ids, for every store.
 */
import { randomBytes } from 'node:crypto';

/** This process's part of every call id, random (ids of two processes never meet). */
const CALL_ID_PREFIX = randomBytes(9).toString('base64url');
let callSeq = 0;

/** A new id for one script call: unique per process and call, short, and no secret. */
export function nextCallId(): string {
  callSeq++;
  return CALL_ID_PREFIX + callSeq.toString(36);
}
