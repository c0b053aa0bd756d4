import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globals: false,
    globalSetup: ['test/global-setup.ts'],
    // After each test file: fails it if it left a process or a socket, then removes the temporary
    // directories of test/helpers/env.ts.
    setupFiles: ['test/helpers/cleanup.ts'],
    testTimeout: 150_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    disableConsoleIntercept: true,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          // In-process tests (pure functions; the task store on a fresh prefix per test): many small files,
          // so a worker process is reused from file to file instead of started for each (about 0.8 s of
          // CPU per file). They patch no global state, and each test's Redis prefix is its own.
          name: 'in-process',
          include: ['test/unit/**/*.test.ts', 'test/store/**/*.test.ts'],
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'processes',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', 'test/store/**'],
        },
      },
    ],
  },
});
