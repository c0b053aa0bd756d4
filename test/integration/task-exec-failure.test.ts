// A task whose wrapper cannot be executed at all (E2BIG: the command and the worker's environment over the
// kernel's limit) never ran: it ends `failed` with the reason, not as the command's own "exit code 1" with no
// message anywhere (adversarial test 3).
import { readFileSync } from 'node:fs';

import { afterAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/logger.js';
import type { TaskJobData } from '../../src/tasks/job-data.js';
import { TaskStatus } from '../../src/tasks/status.js';
import type * as TaskRunModule from '../../src/worker/task-run.js';
import { tempDir } from '../helpers/env.js';

// The built module: its pty host is forked from the file beside it (dist/src/worker/pty-host.js).
const { TaskRun } = (await import(
  new URL('../../dist/src/worker/task-run.js', import.meta.url).href
)) as typeof TaskRunModule;

describe('a task that cannot be executed', () => {
  let host: number | undefined;
  afterAll(() => {
    if (host !== undefined) process.kill(host, 'SIGKILL');
  });

  it('E2BIG: failed, "cannot start", exit code 126', async () => {
    const dir = tempDir();
    const big = 'x'.repeat(120_000);
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
    for (let i = 0; i < 17; i++) env[`BIGV${i}`] = big;
    const command = `echo ${'y'.repeat(60_000)} | wc -c`;
    const data = { id: 12, command, cwd: dir } as TaskJobData;
    const run = new TaskRun(data, { logDir: dir, env, killGraceMs: 1000, logger: silentLogger() });
    const outcome = await run.run();
    // The pty host this process forked: ended after the file (it ignores SIGTERM, and follows this process only).
    host = Number(
      readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'latin1').trim().split(' ')[0],
    );
    expect(outcome).toMatchObject({
      kind: 'final',
      status: TaskStatus.failed,
      exitCode: 126,
      reason: expect.stringMatching(/^cannot start: .*Argument list too long.*E2BIG/),
    });
  });
});
