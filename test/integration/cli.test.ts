/** The CLI as a user runs it: help, bad usage, invalid configuration, unbuilt commands. */
import { describe, expect, it } from 'vitest';
import { runBilling } from '../support/child.ts';

describe('billing CLI', () => {
  it('--help lists the commands and exits 0', async () => {
    const r = await runBilling(['--help'], {});
    expect(r.code).toBe(0);
    for (const cmd of ['start', 'demo', 'sandbox', 'batch', 'subs', 'payments', 'reconcile'])
      expect(r.output).toContain(cmd);
  });

  it('start with an invalid environment exits 2 naming every bad variable, no secret echoed', async () => {
    const r = await runBilling(['start'], {
      SAYSWITCH_SECRET_KEY: 'sk_x9',
      DATA_ENCRYPTION_KEY: 'zz-not-hex-value',
      PORT: 'eighty',
      WORKER_CONCURRENCY: '0',
    });
    expect(r.code).toBe(2);
    for (const v of [
      'SAYSWITCH_SECRET_KEY',
      'DATA_ENCRYPTION_KEY',
      'API_TOKEN',
      'PORT',
      'WORKER_CONCURRENCY',
    ]) {
      expect(r.output).toContain(v);
    }
    expect(r.output).not.toContain('sk_x9');
    expect(r.output).not.toContain('zz-not-hex-value');
  });

  it('bad flags exit 2 with a message naming the flag', async () => {
    const r = await runBilling(['start', '--roles', 'api,cook'], {});
    expect(r.code).toBe(2);
    expect(r.output).toContain('--roles');
    expect(r.output).toContain('cook');
  });
});
