import { relative } from 'node:path';

import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest (vitest time on the 2-core CI machine, longest first, as estimated after the
 * concurrency changes of chaos, cromwell, fast-path and execution). They start first, so that the two
 * workers end together instead of one running the slowest file alone at the end (longest-processing-time-
 * first scheduling). Without this order vitest runs a fresh clone's files by size,
 * which put the slowest file (chaos) last. Files not listed follow in vitest's own order; the in-process
 * files (milliseconds each) come last and fill the gaps.
 */
const SLOWEST_FIRST = [
  'test/reliability/chaos.test.ts',
  // Not fail-fast beside chaos's first, busiest minute (three runs at once): its timed bounds on failing
  // commands broke there at load 20 (13.8 s for a 6.5 s bound).
  'test/integration/manager.test.ts',
  'test/integration/output-fidelity.test.ts',
  'test/reliability/fail-fast.test.ts',
  'test/integration/fast-path.test.ts',
  'test/reliability/bad-input.test.ts',
  'test/integration/slurm.test.ts',
  'test/integration/execution.test.ts',
  'test/integration/jtm-ends-tasks.test.ts',
  'test/integration/cromwell.test.ts',
  'test/reliability/cluster.test.ts',
  'test/integration/dashboard.test.ts',
  'test/reliability/redis-pause.test.ts',
  'test/integration/foundation.test.ts',
  'test/integration/resources.test.ts',
  'test/integration/help-examples.test.ts',
  'test/reliability/redis-restart.test.ts',
  'test/reliability/submit-commit.test.ts',
];

class SlowestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const base = await super.sort(files);
    const rank = (f: TestSpecification): number => {
      const i = SLOWEST_FIRST.indexOf(relative(f.project.config.root, f.moduleId));
      if (i >= 0) return i;
      return f.project.name === 'in-process' ? SLOWEST_FIRST.length + 1 : SLOWEST_FIRST.length;
    };
    // A stable sort: within a rank, vitest's order stands.
    return base
      .map((f, i) => ({ f, i, r: rank(f) }))
      .sort((a, b) => a.r - b.r || a.i - b.i)
      .map(x => x.f);
  }
}

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
    // Three files at a time on the 2-core CI machine: most files mostly wait (task sleeps, leases, process
    // starts), and the CPU was half idle with two (user+sys 287 s over 272 s of wall time on 2 cores). Measured on
    // an idle 2-core machine, same tree: 272 s with 2, 185 s with 3. Tests that count a server's commands use
    // a redis-server of their own (test/helpers/local-redis.ts), since other files run beside them.
    maxWorkers: 3,
    disableConsoleIntercept: true,
    reporters: ['default'],
    sequence: { sequencer: SlowestFirst },
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
          // Concurrent tests of a file (describe.concurrent) at most 3 at a time (vitest's default is 5): each
          // test starts workers and CLI processes, and more at once starved them on 2 cores (1.5 s worker
          // leases lapsed, 2 s connect timeouts expired).
          maxConcurrency: 3,
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', 'test/store/**'],
        },
      },
    ],
  },
});
