import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globals: false,
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Removes the temporary directories of test/helpers/env.ts after each test file.
    setupFiles: ['test/helpers/cleanup.ts'],
    testTimeout: 150_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    disableConsoleIntercept: true,
    reporters: ['default'],
  },
});
