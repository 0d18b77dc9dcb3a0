/**
 * `npm run chaos`: the chaos matrix of test/integration/chaos.test.ts at full size — every sandbox
 * profile × 20 % injected faults × a worker process SIGKILLed again and again, 10,000 payments per
 * cell by default — printing each cell as it ends, then the table and every failing check with
 * examples (docs/operations.md, "Chaos matrix"). Exits 1 when a cell fails a check.
 *
 *   npm run chaos -- --payments 2000 --profiles default,hostile --seed 11 --kills 8
 *
 * Redis: `REDIS_URL`, else the test harness's choice (test/support/redis.ts: a local Redis on
 * 6379, or a throwaway redis-server). Each cell uses its own key prefix and deletes it afterwards.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { PROFILE_NAMES, type ProfileName } from '../src/sandbox/index.ts';
import {
  formatFailures,
  formatRow,
  formatTable,
  runChaosCell,
  type CellEncryption,
  type ChaosCellResult,
} from '../test/support/chaos.ts';

const USAGE = `usage: npm run chaos -- [options]
  --payments <n>        API payments per cell (default 10000)
  --profiles <a,b>      profiles to run (default all: ${PROFILE_NAMES.join(',')})
  --seed <n>            fault injection, amounts and payers' choices (default 7)
  --kills <n>           SIGKILLs of the worker process per cell (default 8)
  --pauses <n>          of those kills, how many first stop the worker past its lease while a
                        stand-in works, then wake it with stale claims (default 0)
  --subscriptions <n>   daily subscriptions per cell (default 6)
  --renewals <n>        renewal rounds after the first period (default 3)
  --fault-rate <p>      injected 54/55/56/57 per submission (default 0.2)
  --time-scale <x>      scales the profiles' lookup lag and 3DS expiry (default per profile:
                        0.1 for idempotent-replay, 0.01 for the others)
  --not-found-grace <ms> the product's RECONCILE_NOT_FOUND_GRACE (default 200)
  --life-cap <s>        longest life of a worker process between kills (default 30)
  --settle-timeout <s>  longest drain per cell before it is reported as it stands (default 600)
  --stall <s>           the drain also ends after this long without any change (default 60)
  --sandbox <json>      sandbox options over each profile's, e.g. '{"lookupLagMs":60000}'
  --encryption <e>      payload encryption of every cell: hex, base64 or off (default per
                        profile: off for default, hex or base64 for the others)
  --json <file>         also write every cell's result (checks with examples) as JSON`;

function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      payments: { type: 'string', default: '10000' },
      profiles: { type: 'string', default: PROFILE_NAMES.join(',') },
      seed: { type: 'string', default: '7' },
      kills: { type: 'string', default: '8' },
      pauses: { type: 'string', default: '0' },
      subscriptions: { type: 'string', default: '6' },
      renewals: { type: 'string', default: '3' },
      'fault-rate': { type: 'string', default: '0.2' },
      'time-scale': { type: 'string' },
      'not-found-grace': { type: 'string', default: '200' },
      stall: { type: 'string', default: '60' },
      'life-cap': { type: 'string', default: '30' },
      'settle-timeout': { type: 'string', default: '600' },
      sandbox: { type: 'string' },
      encryption: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return Promise.resolve();
  }
  const num = (name: keyof typeof values, min: number): number => {
    const v = Number(values[name]);
    if (!Number.isFinite(v) || v < min) {
      console.error(`--${name} must be a number >= ${min}\n${USAGE}`);
      process.exit(2);
    }
    return v;
  };
  const profiles = String(values.profiles)
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const unknown = profiles.filter((p) => !(PROFILE_NAMES as readonly string[]).includes(p));
  if (unknown.length > 0 || profiles.length === 0) {
    console.error(`unknown profile(s) ${unknown.join(', ')}; known: ${PROFILE_NAMES.join(', ')}`);
    process.exit(2);
  }
  const encryption = values.encryption;
  if (encryption !== undefined && !isCellEncryption(encryption)) {
    console.error(`--encryption must be hex, base64 or off\n${USAGE}`);
    process.exit(2);
  }
  let sandbox: Record<string, unknown> | undefined;
  if (values.sandbox !== undefined) {
    try {
      sandbox = JSON.parse(values.sandbox) as Record<string, unknown>;
    } catch {
      console.error(`--sandbox must be a JSON object\n${USAGE}`);
      process.exit(2);
    }
  }
  return run({
    profiles: profiles as ProfileName[],
    payments: Math.floor(num('payments', 1)),
    seed: Math.floor(num('seed', 0)),
    kills: Math.floor(num('kills', 0)),
    pauses: Math.floor(num('pauses', 0)),
    subscriptions: Math.floor(num('subscriptions', 0)),
    renewals: Math.floor(num('renewals', 0)),
    faultRate: num('fault-rate', 0),
    ...(values['time-scale'] !== undefined ? { timeScale: num('time-scale', 0.000001) } : {}),
    lifeCapMs: num('life-cap', 1) * 1000,
    settleTimeoutMs: num('settle-timeout', 1) * 1000,
    stallMs: num('stall', 1) * 1000,
    notFoundGraceMs: num('not-found-grace', 1),
    ...(values.json !== undefined ? { json: values.json } : {}),
    ...(sandbox !== undefined ? { sandbox } : {}),
    ...(encryption !== undefined ? { encryption } : {}),
  });
}

function isCellEncryption(v: string): v is CellEncryption {
  return v === 'hex' || v === 'base64' || v === 'off';
}

async function run(o: {
  profiles: ProfileName[];
  payments: number;
  seed: number;
  kills: number;
  pauses: number;
  subscriptions: number;
  renewals: number;
  faultRate: number;
  timeScale?: number;
  lifeCapMs: number;
  settleTimeoutMs: number;
  stallMs: number;
  notFoundGraceMs: number;
  json?: string;
  sandbox?: Record<string, unknown>;
  encryption?: CellEncryption;
}): Promise<void> {
  console.log(
    `chaos matrix: ${o.payments} payments per cell, profiles ${o.profiles.join(', ')}; seed ${o.seed}, ` +
      `faultRate ${o.faultRate}, ${o.kills} kills (${o.pauses} paused first), ${o.subscriptions} subscriptions × ${o.renewals + 1} periods, ` +
      `timeScale ${o.timeScale ?? 'per profile'}, not-found grace ${o.notFoundGraceMs} ms` +
      (o.sandbox !== undefined ? `, sandbox ${JSON.stringify(o.sandbox)}` : '') +
      `, encryption ${o.encryption ?? 'per profile'}` +
      `; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}`,
  );
  const results: ChaosCellResult[] = [];
  const started = performance.now();
  for (const profile of o.profiles) {
    console.log(`\n== ${profile}`);
    const r = await runChaosCell({
      profile,
      payments: o.payments,
      seed: o.seed,
      kills: o.kills,
      pauses: o.pauses,
      subscriptions: o.subscriptions,
      renewals: o.renewals,
      faultRate: o.faultRate,
      ...(o.timeScale !== undefined ? { timeScale: o.timeScale } : {}),
      lifeCapMs: o.lifeCapMs,
      settleTimeoutMs: o.settleTimeoutMs,
      stallMs: o.stallMs,
      notFoundGraceMs: o.notFoundGraceMs,
      ...(o.sandbox !== undefined ? { sandbox: o.sandbox } : {}),
      ...(o.encryption !== undefined ? { encryption: o.encryption } : {}),
      log: (line) => console.log(line),
    });
    results.push(r);
    console.log(formatRow(r));
    if (Object.keys(r.needsReviewByCents).length > 0) {
      console.log(`  needs_review by amount cents: ${JSON.stringify(r.needsReviewByCents)}`);
    }
  }
  console.log(`\n${formatTable(results)}\n`);
  const failures = formatFailures(results);
  console.log(
    failures === '' ? 'every check passed in every cell' : `failing checks:\n${failures}`,
  );
  console.log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (o.json !== undefined) writeFileSync(o.json, `${JSON.stringify(results, null, 2)}\n`);
  if (results.some((r) => !r.ok)) process.exitCode = 1;
}

await main();
// A throwaway redis-server the harness may have spawned is killed on exit.
process.exit();
