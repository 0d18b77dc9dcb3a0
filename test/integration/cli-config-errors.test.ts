/**
 * Configuration the process cannot run on is refused as a configuration error (exit 2, code
 * `config`, naming the variable, never its value), never as a crash of whatever reads it later
 * (exit 1, `error: Invalid URL`, no variable named). These runs stop before any Redis command.
 */
import { describe, expect, it } from 'vitest';
import { FAST_ENV } from '../support/app.ts';
import { runCliChild } from '../support/cli-run.ts';

const REQUIRED = {
  SAYSWITCH_SECRET_KEY: FAST_ENV.SAYSWITCH_SECRET_KEY ?? '',
  DATA_ENCRYPTION_KEY: FAST_ENV.DATA_ENCRYPTION_KEY ?? '',
  API_TOKEN: FAST_ENV.API_TOKEN ?? '',
  QUEUE_PREFIX: 'cli-config-errors-never-used',
};

interface ErrorDoc {
  error: { code: string; message: string; details?: { problems?: { variable: string }[] } };
}

describe('billing: URL variables the clients cannot parse', () => {
  it.each([
    // A password holding a bare %: ioredis throws "URI malformed" when the app opens.
    ['REDIS_URL', 'redis://:s3cret%pw@127.0.0.1:6379'],
    // A port typo: undici's `new URL` throws "Invalid URL" when the gateway is built.
    ['SAYSWITCH_BASE_URL', 'https://backendapi.sayswitchgroup.com:443x'],
  ])(
    '%s=%s: exit 2, code config, the variable named and its value not echoed',
    async (name, value) => {
      const r = await runCliChild(['--json', 'payments', 'show', 'x'], {
        ...REQUIRED,
        [name]: value,
      });
      expect(r.code, r.stderr).toBe(2);
      const doc = JSON.parse(r.stdout) as ErrorDoc;
      expect(doc.error.code).toBe('config');
      expect(doc.error.details?.problems?.map((p) => p.variable)).toEqual([name]);
      expect(r.stdout + r.stderr).not.toContain('s3cret');
    },
  );
});

describe('billing sandbox (no configuration loaded): LOG_LEVEL', () => {
  it.each(['verbose', ''])(
    'LOG_LEVEL=%j: exit 2 naming LOG_LEVEL, as every other command',
    async (level) => {
      const r = await runCliChild(['--json', 'sandbox', '--port', '0'], { LOG_LEVEL: level });
      expect(r.code, r.stderr).toBe(2);
      const doc = JSON.parse(r.stdout) as ErrorDoc;
      expect(doc.error.code).toBe('config');
      expect(doc.error.details?.problems?.map((p) => p.variable)).toEqual(['LOG_LEVEL']);
      // What `billing start` says of the same value.
      const start = await runCliChild(['--json', 'start'], { ...REQUIRED, LOG_LEVEL: level });
      expect(start.code, start.stderr).toBe(2);
      expect((JSON.parse(start.stdout) as ErrorDoc).error.code).toBe('config');
    },
  );
});
