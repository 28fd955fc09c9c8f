import { defineConfig } from 'vitest/config';

// `npm run test:long`: the soak. Same setup as vitest.config.ts, plus the leak capture in the
// main process (globalSetup), so `tsx scripts/leak-scan.ts` can check everything printed.
export default defineConfig({
  test: {
    include: ['test/long/**/*.test.ts'],
    exclude: ['node_modules/**'],
    setupFiles: ['test/support/setup.ts'],
    globalSetup: ['test/support/leak-capture.ts'],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
