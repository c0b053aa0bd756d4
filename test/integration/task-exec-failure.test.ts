// A task whose wrapper cannot be executed at all (E2BIG: the command and the worker's environment over the
// kernel's limit) never ran: it ends `failed` with the reason, not as the command's own "exit code 1" with no
// message anywhere (adversarial test 3).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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

  // bash could not open an output file the worker had checked a moment before (a shared file system changed in
  // between): its message was lost when it was over 2 KB (a long path) or shared its line with text the shell's
  // start wrote without a newline, and the task ended `exit code 125`, rc 125, not failed with bash's message, rc 126.
  // Here a BASH_ENV script (run by the task's bash before JTM's preamble) makes the file a directory.
  it.each([
    ['a 2,000-byte output path', true, ''],
    ['text without a newline before the message', false, "printf 'HELLO-NO-NEWLINE'; "],
  ])(
    "bash cannot open the output after the worker's check (%s): failed with bash's message (adversary 41 F1)",
    async (_what, long, prefix) => {
      const dir = tempDir();
      const base = long ? join(dir, ...Array.from({ length: 20 }, () => 'r'.repeat(99))) : join(dir, 'race');
      mkdirSync(base, { recursive: true });
      const out = join(base, 'out');
      const hook = join(dir, 'hook.sh');
      writeFileSync(hook, `${prefix}rm -f '${out}'; mkdir -p '${out}'\n`);
      const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', BASH_ENV: hook };
      const data = { id: 13, command: 'echo a', cwd: dir, stdout: out } as TaskJobData;
      const run = new TaskRun(data, { logDir: dir, env, killGraceMs: 1000, logger: silentLogger() });
      const outcome = await run.run();
      expect(outcome).toMatchObject({
        kind: 'final',
        status: TaskStatus.failed,
        reason: expect.stringMatching(/^cannot write output: .*\/out: Is a directory$/),
      });
      expect(outcome).not.toHaveProperty('exitCode');
    },
  );
});
