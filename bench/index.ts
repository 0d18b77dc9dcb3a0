/**
 * `npm run bench [-- --only <name>]`: runs each bench module that exists, in sequence, each
 * printing its numbers and its ratios against a baseline measured in the same run.
 *
 * A module either exports `main()` (called with no arguments) or runs when imported (as
 * sandbox-rps does). Missing modules are skipped with a note, so this list can name benches other
 * features add later. Benches run one at a time: they share the machine's cores, and a bench's
 * ratio is only meaningful when nothing else is competing with it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const BENCHES = [
  'throughput',
  'batch-ingest',
  'subscription-tick',
  'payment-list',
  'sandbox-rps',
] as const;

const { values } = parseArgs({
  options: { only: { type: 'string', multiple: true } },
  strict: false,
  allowPositionals: true,
});
const only = (values.only ?? []).filter((v): v is string => typeof v === 'string');
const unknown = only.filter((o) => !(BENCHES as readonly string[]).includes(o));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; known: ${BENCHES.join(', ')}`);
  process.exit(2);
}
// Benches parse process.argv themselves (some strictly): hide this runner's own flags from them.
process.argv = process.argv.slice(0, 2);

const selected = BENCHES.filter((b) => only.length === 0 || only.includes(b));
const failures: string[] = [];
for (const name of selected) {
  const file = new URL(`./${name}.ts`, import.meta.url);
  if (!existsSync(fileURLToPath(file))) {
    console.log(`\n=== ${name}: skipped (bench/${name}.ts does not exist)`);
    continue;
  }
  console.log(`\n=== ${name}`);
  const started = performance.now();
  try {
    const mod = (await import(file.href)) as { main?: () => Promise<unknown> };
    if (typeof mod.main === 'function') await mod.main();
  } catch (err) {
    failures.push(name);
    console.error(`${name} failed:`, err);
  }
  console.log(`=== ${name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
if (failures.length > 0) {
  console.error(`\nfailed: ${failures.join(', ')}`);
  process.exitCode = 1;
}
