import { defineConfig } from 'vitest/config';

/**
 * The crash tests (`npm run test:chaos`): real `fen` processes killed with
 * SIGKILL and a PostgreSQL server restarted under load. They run apart from
 * `npm test` (vitest.config.ts leaves test/chaos out), one file at a time,
 * because each file starts its own PostgreSQL and its own Fen processes and
 * they share the machine's cores. Every test bounds its own loops in count and
 * time; the whole run takes a few minutes.
 */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
