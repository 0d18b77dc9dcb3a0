/**
 * Password sign-ins (basic auth: the queue dashboard and the console) against online guessing
 * (docs/console.md "Failed sign-ins"): a client address that failed DASHBOARD_SIGN_IN_MAX_FAILURES times
 * within DASHBOARD_SIGN_IN_BLOCK is answered 429 with `Retry-After` for DASHBOARD_SIGN_IN_BLOCK, before its password
 * is checked, so a right guess made while blocked is not told apart from a wrong one. Each password
 * is counted before it is checked and given back when right, so guesses sent at once cannot all be
 * checked before the first failure is counted.
 *
 * Only passwords are throttled. Bearer tokens are at least 16 characters a machine chose, not
 * guessable online; and a stale token that a client behind the same egress address keeps
 * sending must not lock the merchant's production caller out of the API.
 *
 * The address is `req.ip`: the socket's peer, or with TRUST_PROXY the client a trusted proxy
 * names in `X-Forwarded-For`. Behind a proxy without TRUST_PROXY every client shares the
 * proxy's address, so the setting is part of deploying behind one (docs/operations.md). An IPv6
 * address counts by its /64 ({@link signInClient}).
 */
import type { FastifyRequest } from 'fastify';
import ipaddr from 'ipaddr.js';
import type { SignInThrottle } from '../kernel/ports.ts';
import type { Logger } from '../infra/logger.ts';

/** Whether an `Authorization` header carries basic credentials (a password). */
export const isBasicAuth = (header: string | undefined): boolean =>
  header !== undefined && /^Basic\s/i.test(header);

export interface SignInGate {
  /**
   * Takes one password attempt of the request's client before its password is checked: the
   * seconds (`Retry-After`) it must wait, its password unchecked; 0 to check it.
   */
  attempt(req: FastifyRequest): Promise<number>;
  /** The attempt's password was right: it does not count against the client. */
  succeeded(req: FastifyRequest): Promise<void>;
  /** The attempt's password was wrong: the seconds it must now wait, 0 while it may try again. */
  failed(req: FastifyRequest): Promise<number>;
}

/** What the sign-in gate counts (`billing_sign_in_failures_total`). */
export const SIGN_IN_REALMS = ['dashboard', 'console'] as const;
export const SIGN_IN_FAILURES = ['wrong_password', 'blocked'] as const;
/**
 * Called for each wrong password, and for each request refused because its address is blocked:
 * an alert on its increase sees password guessing (docs/operations.md "Alerts worth setting").
 */
export type CountSignInFailure = (
  realm: (typeof SIGN_IN_REALMS)[number],
  failure: (typeof SIGN_IN_FAILURES)[number],
) => void;

const seconds = (ms: number) => (ms > 0 ? Math.ceil(ms / 1000) : 0);

/**
 * Whom a sign-in counts for: an IPv4 address as it is (an IPv4-mapped IPv6 one as that IPv4
 * address), and an IPv6 address by its /64 (`2001:db8:1:2::/64`), the block a single host or
 * customer is handed whole: counted per address, its 2^64 addresses would each get their own
 * DASHBOARD_SIGN_IN_MAX_FAILURES guesses.
 */
export function signInClient(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const addr = ipaddr.process(ip); // an IPv4-mapped IPv6 address as its IPv4 address
  if (addr.kind() === 'ipv4') return addr.toString();
  const parts = (addr as ipaddr.IPv6).parts.slice(0, 4);
  return `${new ipaddr.IPv6([...parts, 0, 0, 0, 0]).toString()}/64`;
}

/**
 * The gate of one realm (`dashboard`, `console`) over the shared throttle; without one (a test of
 * something else) it only logs the failures.
 */
export function signInGate(
  throttle: SignInThrottle | undefined,
  log: Logger,
  realm: (typeof SIGN_IN_REALMS)[number],
  count: CountSignInFailure = () => {},
): SignInGate {
  return {
    async attempt(req) {
      const wait = throttle ? seconds(await throttle.attempt(signInClient(req.ip))) : 0;
      if (wait > 0) count(realm, 'blocked');
      return wait;
    },
    async succeeded(req) {
      await throttle?.succeeded(signInClient(req.ip));
    },
    async failed(req) {
      count(realm, 'wrong_password');
      const wait = throttle ? seconds(await throttle.failed(signInClient(req.ip))) : 0;
      // Neither the user name nor the password tried is logged.
      if (wait > 0)
        log.warn(
          { ip: req.ip, url: req.url, realm, retryAfterS: wait },
          'sign-in: too many failed attempts from this address; refused until the block ends',
        );
      else log.warn({ ip: req.ip, url: req.url, realm }, `${realm}: wrong credentials`);
      return wait;
    },
  };
}
