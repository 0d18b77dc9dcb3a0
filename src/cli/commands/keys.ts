/**
 * `billing keys reseal`: the second half of rotating DATA_ENCRYPTION_KEY (docs/operations.md
 * "Rotating secrets"). Every sealed card token and card authorization that the previous key
 * (DATA_ENCRYPTION_KEY_PREVIOUS) sealed is sealed again under DATA_ENCRYPTION_KEY, each by a
 * compare-and-set: subscriptions first (renewals copy their token into new payments), then rows
 * held for approval, then payments. Idempotent and safe while the service runs; a pass that moves
 * nothing is the proof that DATA_ENCRYPTION_KEY_PREVIOUS can be unset. A record whose JSON does
 * not parse is not looked into: counted (`unreadableRecords`), named, left as it is, and the pass
 * is not done (exit 1, `unreadable_records`, unless a value no key opens was found too).
 */
import type { Command } from 'commander';
import { addReseal, NO_RESEAL, type ResealCounts } from '../../kernel/ports.ts';
import { withApp, type CliContext } from '../context.ts';
import { CliError, unreadableRecordsMessage } from '../errors.ts';

const line = (what: string, c: ResealCounts) =>
  `${what}: ${c.checked} sealed values, ${c.resealed} resealed, ${c.changed} changed meanwhile, ` +
  `${c.unreadable} unreadable${c.unreadableAt.length > 0 ? ` (${c.unreadableAt.join(', ')})` : ''}` +
  (c.unreadableRecords > 0
    ? `; ${c.unreadableRecords} records this version cannot read (${c.unreadableRecordsAt.join(', ')})`
    : '');

export function registerKeysCommands(program: Command, ctx: CliContext) {
  const keys = program
    .command('keys')
    .description('DATA_ENCRYPTION_KEY: move what its previous key sealed to it (a rotation)');

  keys
    .command('reseal')
    .description(
      'seal again under DATA_ENCRYPTION_KEY every card token DATA_ENCRYPTION_KEY_PREVIOUS sealed; ' +
        'run it until a pass moves nothing, then unset DATA_ENCRYPTION_KEY_PREVIOUS',
    )
    .action(async () => {
      await withApp(ctx, async (app) => {
        const reseal = (sealed: string) => app.sealer.reseal(sealed);
        const subscriptions = await app.subscriptions.resealAll(reseal);
        const heldRows = await app.batches.resealAll(reseal);
        const payments = await app.store.resealAll(reseal);
        const total = [subscriptions, heldRows, payments].reduce(addReseal, NO_RESEAL);
        const previousSet = app.config.previousDataEncryptionKey !== undefined;
        // A record this version cannot read was not looked into: it may hold a value the previous
        // key sealed.
        const done =
          total.resealed === 0 &&
          total.changed === 0 &&
          total.unreadable === 0 &&
          total.unreadableRecords === 0;
        ctx
          .out()
          .result(
            { subscriptions, heldRows, payments, total, previousKeySet: previousSet, done },
            () =>
              [
                line('subscriptions', subscriptions),
                line('rows held for approval', heldRows),
                line('payments', payments),
                done
                  ? previousSet
                    ? 'nothing is sealed under DATA_ENCRYPTION_KEY_PREVIOUS any more: unset it and restart'
                    : 'everything opens with DATA_ENCRYPTION_KEY'
                  : total.unreadable > 0 || total.unreadableRecords > 0
                    ? ''
                    : 'run it again: a pass that moves nothing shows the previous key is no longer needed',
              ].filter((l) => l !== ''),
          );
        const unreadableRecords = unreadableRecordsMessage(total);
        const problems = [
          ...(total.unreadable > 0
            ? [
                `${total.unreadable} sealed values open with neither DATA_ENCRYPTION_KEY nor ` +
                  `DATA_ENCRYPTION_KEY_PREVIOUS (${total.unreadableAt.join(', ')}): they were sealed ` +
                  'under another key; keep the previous key set until that key is found',
              ]
            : []),
          ...(unreadableRecords !== undefined ? [unreadableRecords] : []),
        ];
        if (problems.length > 0) {
          // One error: a value no key opens is the graver (the code scripts already know).
          throw new CliError(problems, {
            code: total.unreadable > 0 ? 'unreadable_sealed_values' : 'unreadable_records',
            details: {
              ...(total.unreadable > 0 ? { unreadableAt: total.unreadableAt } : {}),
              ...(total.unreadableRecords > 0
                ? { unreadableRecordsAt: total.unreadableRecordsAt }
                : {}),
            },
          });
        }
      });
    });
}
