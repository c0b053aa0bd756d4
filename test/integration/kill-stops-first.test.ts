// Adversary 31 F5: a tree's processes were killed one by one (then group by group), and a parent that ignores
// TERM ran its next command — a write to a file — in the moment between its child's SIGKILL and its own: a killed
// task went on writing. The kill now stops every process of the tree, then kills them all.
import { existsSync, readFileSync } from 'node:fs';
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
