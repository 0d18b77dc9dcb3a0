import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // Property tests run hundreds of cases; on two loaded cores the 5 s default is a
          // timing assertion in disguise. A bound, not a target.
          testTimeout: 30_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Integration files share one Redis (isolated by prefix) and spawn child processes;
          // two cores here, so keep them from starving each other.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
          setupFiles: ['test/support/leak-check.ts'],
        },
      },
    ],
  },
});
