/**
 * `billing redis status` and `billing redis ack-data-loss`: the deployment epoch that tells a
 * running service Redis lost its data (docs/operations.md, "Redis lost its data").
 */
import type { Command } from 'commander';
import { withApp, type CliContext } from '../context.ts';

export function registerRedisCommands(program: Command, ctx: CliContext) {
  const redis = program
    .command('redis')
    .description('Redis as the service sees it: its deployment epoch and data-loss alarm');

  redis
    .command('status')
    .description('show the deployment epoch and whether a data loss waits to be acknowledged')
    .action(async () => {
      await withApp(ctx, async (app) => {
        const epoch = (await app.epoch.read()) ?? null;
        ctx
          .out()
          .result({ redis: app.health.address, epoch }, () =>
            epoch === null
              ? `${app.health.address}: no deployment epoch yet (no service has started against it)`
              : epoch.state === 'lost'
                ? `${app.health.address}: DATA LOST (epoch ${epoch.lostId ?? '?'} is gone, detected ${new Date(epoch.detectedAt ?? 0).toISOString()}); acknowledge with: billing redis ack-data-loss`
                : `${app.health.address}: epoch ${epoch.id}, ok`,
          );
      });
    });

  redis
    .command('ack-data-loss')
    .description(
      'acknowledge a detected Redis data loss once payments accepted before it were checked at Sayswitch: /readyz turns ready again',
    )
    .action(async () => {
      await withApp(ctx, async (app) => {
        const acknowledged = await app.epoch.acknowledge(app.clock.now());
        ctx
          .out()
          .result({ acknowledged }, () =>
            acknowledged
              ? 'data loss acknowledged: services report ready again within a few seconds'
              : 'no data loss waits to be acknowledged',
          );
      });
    });
}
