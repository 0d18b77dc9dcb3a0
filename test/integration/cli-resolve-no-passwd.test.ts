/**
 * `billing payments resolve` run by a user without a passwd entry (a container started with a
 * bare uid): `os.userInfo()` throws there. The command took its identity from it directly and
 * crashed before resolving; it now uses `cliIdentity` like batch approvals and refunds, and the
 * resolution is recorded as `cli:unknown`. Real Redis and sandbox, the CLI in-process.
 */
import type * as os from 'node:os';
import { expect, it, vi } from 'vitest';
import { appWithoutRoles } from '../support/app.ts';
import { runCliInProcess } from '../support/cli-run.ts';
import { unresolvedTestCharge } from '../support/intents.ts';

/** While set, `os.userInfo()` throws as it does for a uid without a passwd entry. */
const noPasswd = vi.hoisted(() => ({ on: false }));
vi.mock('node:os', async (importOriginal) => {
  const real = await importOriginal<typeof os>();
  return {
    ...real,
    userInfo: (...a: Parameters<typeof real.userInfo>) => {
      if (!noPasswd.on) return real.userInfo(...a);
      throw Object.assign(new Error('ENOENT: no such file or directory, uv_os_get_passwd'), {
        code: 'ENOENT',
      });
    },
  };
});

const env = appWithoutRoles();

it('resolves, recording cli:unknown as who did', async () => {
  const key = await unresolvedTestCharge(env.t.app.store, 'nopasswd', 'needs_review');
  const { store } = env.t.app;

  noPasswd.on = true;
  const res = await runCliInProcess(env.t.app.config, [
    'payments',
    'resolve',
    key,
    '--outcome',
    'failed',
    '--note',
    'checked the dashboard: never arrived',
    '--force',
    '--json',
  ]).finally(() => (noPasswd.on = false));
  expect(res.err).not.toContain('uv_os_get_passwd');
  expect(res.code).toBe(0);
  expect(await store.get(key)).toMatchObject({ state: 'failed' });
  expect((await store.history(key)).at(-1)).toMatchObject({
    to: 'failed',
    resolution: { by: 'cli:unknown', forced: true },
  });
});
