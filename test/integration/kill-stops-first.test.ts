// Adversary 31 F5: a tree's processes were killed one by one (then group by group), and a parent that ignores
// TERM ran its next command — a write to a file — in the moment between its child's SIGKILL and its own: a killed
// task went on writing. The kill now stops every process of the tree, then kills them all.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runJtm, startJtm, taskIds, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext, waitFinalRecord } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import type { JtmContext } from '../../src/context.js';
import { TaskStatus } from '../../src/tasks/status.js';

describe('a kill', () => {
  const env = testEnv({ JTM_KILL_GRACE: '500ms' });
  let worker: BackgroundProcess;
  let ctx: JtmContext;
  const work = tempDir('jtm-kill-stop-');
  beforeAll(async () => {
    ctx = await openTestContext(env);
    worker = startJtm(['worker', '-p', 'kstop', '--slots', '3'], env);
    await waitWorkers(env, 'kstop');
  });
  afterAll(async () => {
    await worker.stop();
    await closeContext(ctx);
  });

  it('leaves no moment in which a process of the tree runs after another was killed: 3 × 40 subshells that ignore TERM write nothing', async () => {
    const marks = (k: number): string => join(work, `marks-${k}`);
    const command = (k: number): string =>
      `${Array.from({ length: 40 }, (_, i) => `(trap '' TERM; sleep 300; echo O${i} >> ${marks(k)}) &`).join(' ')} wait`;
    const ids = await Promise.all(
      [0, 1, 2].map(
        async k => taskIds((await runJtm(['submit', '-p', 'kstop', '-cmd', command(k)], env)).stdout)[0]!,
      ),
    );
    for (const id of ids)
      await waitFor(async () => (await ctx.tasks.status(id)) === TaskStatus.running, 'running');
    // The subshells and their sleeps exist (each task's 40 pairs started).
    await new Promise(r => setTimeout(r, 1000));
    await Promise.all(ids.map(async id => runJtm(['kill', '-tid', String(id)], env)));
    for (const id of ids) expect((await waitFinalRecord(ctx, id)).status).toBe(TaskStatus.terminated);
    // A write after the kill comes at once or never: a moment for it to land.
    await new Promise(r => setTimeout(r, 500));
    const written = [0, 1, 2].map(k => (existsSync(marks(k)) ? readFileSync(marks(k), 'utf8') : ''));
    expect(written).toEqual(['', '', '']);
  }, 90_000);

  it("sends each process its TERM once: a task's TERM trap runs once (it ran twice: group and pid)", async () => {
    const marks = join(work, 'trapped');
    const [id] = taskIds(
      (
        await runJtm(
          [
            'submit',
            '-p',
            'kstop',
            '-cmd',
            `trap 'echo trapped >> ${marks}' TERM; while :; do sleep 0.1; done`,
          ],
          env,
        )
      ).stdout,
    );
    await waitFor(async () => (await ctx.tasks.status(id!)) === TaskStatus.running, 'running');
    await new Promise(r => setTimeout(r, 500));
    await runJtm(['kill', '-tid', String(id)], env);
    expect((await waitFinalRecord(ctx, id!)).status).toBe(TaskStatus.terminated);
    expect(readFileSync(marks, 'utf8')).toBe('trapped\n');
  }, 60_000);
});

// Adversary 36 M2: what a finished task left running was killed one process at a time once JTM_LEFTOVER_GRACE had
// passed (its shell gone, no group to signal at once): a subshell whose `sleep` got its TERM first ran on, and the
// task's stdout got `never`, its stderr bash's `Terminated` (4 of 36 runs), with status success. The leftovers are
// now stopped before they are signalled, as a running tree is.
describe('the leftovers of a finished task', () => {
  const env = testEnv({ JTM_LEFTOVER_GRACE: '200ms' });
  let worker: BackgroundProcess;
  let ctx: JtmContext;
  const work = tempDir('jtm-leftover-stop-');
  beforeAll(async () => {
    ctx = await openTestContext(env);
    worker = startJtm(['worker', '-p', 'lstop', '--slots', '8'], env);
    await waitWorkers(env, 'lstop');
  });
  afterAll(async () => {
    await worker.stop();
    await closeContext(ctx);
  });

  it('are killed with no moment for one of them to run on: no `never` on stdout, no `Terminated` on stderr', async () => {
    const tasks = 24;
    const command = `${'(sleep 20; echo never) & (sleep 20) & '.repeat(8)}echo main`;
    const file = join(work, 'tasks.jsonl');
    writeFileSync(
      file,
      Array.from({ length: tasks }, (_, k) =>
        JSON.stringify({ command, stdout: join(work, `${k}.out`), stderr: join(work, `${k}.err`) }),
      ).join('\n'),
    );
    const ids = taskIds((await runJtm(['submit', '-p', 'lstop', '-f', file], env)).stdout);
    expect(ids).toHaveLength(tasks);
    for (const id of ids) {
      const rec = await waitFinalRecord(ctx, id, 60_000);
      expect(rec.status).toBe(TaskStatus.success);
      expect(rec.leftover_pids).toBeTruthy();
    }
    const outputs = Array.from({ length: tasks }, (_, k) => [
      readFileSync(join(work, `${k}.out`), 'utf8'),
      readFileSync(join(work, `${k}.err`), 'utf8'),
    ]);
    expect(outputs).toEqual(Array.from({ length: tasks }, () => ['main\n', '']));
  }, 120_000);
});
