import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  runJtm,
  startJtm,
  taskIds,
  type BackgroundProcess,
  waitStatus,
  waitWorkers,
} from '../helpers/cli.js';
import { isAlive, tempDir, testEnv, waitFor } from '../helpers/env.js';
import { pidPlacement, spawnAtPid } from '../helpers/processes.js';
import { SKIP_MARK } from '../helpers/requirements.js';

/*
 * A busy node (pid_max 32768, thousands of short processes a second) hands a pid out again seconds after its
 * process ended. What a task's end kills must be that task's processes only: a process of someone else that
 * got the pid of the task's exited root was killed as a leftover, alone — another task's `sleep` — and that
 * task's shell ran the rest of its script (adversary 16 Q1: outputs and rc 0 from a run JTM had stopped).
 */
const placement = pidPlacement();
// Both ways of finding a task's processes: its cgroup (where this machine has one) and the /proc walk.
describe.each(['auto', 'procfs'])('accounting %s', accounting => {
  (placement.available ? describe : describe.skip)(
    `a pid handed out again during a task's end${placement.available ? '' : `${SKIP_MARK}${placement.reason}]`}`,
    () => {
      const env = testEnv({ JTM_LEFTOVER_GRACE: '5s', JTM_ACCOUNTING: accounting });
      const pool = `pidreuse${accounting}${process.pid}`;
      let work = '';
      let worker: BackgroundProcess | undefined;

      beforeAll(async () => {
        work = tempDir('jtm-pid-reuse-');
        worker = startJtm(['worker', '-p', pool, '--slots', '1'], env);
        await waitWorkers(env, pool, 1, 60_000);
      });
      afterAll(async () => {
        await worker?.stop('SIGKILL');
      });

      it("a process given the task's exited root pid is not taken for a leftover of the task", async ({
        skip,
      }) => {
        const rootFile = join(work, 'root.pid');
        // The root exits at once, leaving a child for the leftover grace: the worker watches the task's processes
        // for it, while the test gives the root's pid to a process of its own.
        const file = join(work, 'task.jsonl');
        writeFileSync(
          file,
          JSON.stringify({ command: `echo $$ > ${rootFile}; setsid sleep 3 >/dev/null 2>&1 & exit 0` }),
        );
        const [id] = taskIds((await runJtm(['submit', '-f', file, '-p', pool], env)).stdout);
        const root = await waitFor(
          () => (existsSync(rootFile) ? Number(readFileSync(rootFile, 'utf8')) || undefined : undefined),
          'the root pid',
          30_000,
        );
        await waitFor(() => !existsSync(`/proc/${root}`) || undefined, 'the root gone', 10_000);
        const stranger = await spawnAtPid(root, ['sleep', '60']);
        // A node forking without pause may take the pid first every time (a loaded CI runner): nothing to test then.
        if (!stranger) return skip();
        try {
          await waitStatus(env, id!, 'success', 30_000);
          expect(isAlive(root), 'the process at the reused pid').toBe(true);
        } finally {
          stranger?.kill('SIGKILL');
        }
      });
    },
  );
});
