// A worker run as an ordinary user (as on most Slurm sites), started here by root as nobody: what it may not
// do must be said as such, not disguised as the command's failure.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, expect, it } from 'vitest';

import { BIN, runJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { asRoot, describeIf } from '../helpers/requirements.js';

const NOBODY = 65534;

describeIf(asRoot('starts a worker as another user'), 'a worker run as an ordinary user', () => {
  const work = tempDir('jtm-nonroot-');
  chmodSync(work, 0o755);
  const env = testEnv({ JTM_LOG_DIR: join(work, 'log'), HOME: work });
  mkdirSync(env['JTM_LOG_DIR']!, { recursive: true });
  chownSync(env['JTM_LOG_DIR']!, NOBODY, NOBODY);
  const worker = spawn(process.execPath, [BIN, 'worker', '-p', 'nr'], {
    env,
    cwd: '/',
    uid: NOBODY,
    gid: NOBODY,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise(r => worker.on('exit', r));
  let log = '';
  worker.stderr.on('data', d => (log += d));
  afterAll(async () => {
    worker.kill('SIGTERM');
    await exited;
    rmSync(work, { recursive: true, force: true });
  });

  it("a working directory it may not enter: 'not accessible to the worker's user', not a missing one or exit 1 (adversary 12 D2)", async () => {
    await waitWorkers(env, 'nr', 1, 30_000).catch(err => {
      throw new Error(`${String(err)}; worker log: ${log}`);
    });
    // Root's: mode 0700 (another user's home); and a directory below it, which exists too.
    const closed = join(work, 'closed');
    mkdirSync(join(closed, 'sub'), { recursive: true, mode: 0o700 });
    const ids: number[] = [];
    for (const cwd of [closed, join(closed, 'sub')]) {
      const r = await runJtm(['submit', '-p', 'nr', '-cmd', 'echo hi'], env, { cwd });
      ids.push(taskIds(r.stdout)[0]!);
    }
    const ctx = await openTestContext(env);
    try {
      for (const [k, id] of ids.entries()) {
        const rec = await waitFor(async () => {
          const t = await ctx.tasks.get(id);
          return t && t.status < 0 ? t : undefined;
        }, `task ${id} to fail`);
        expect([rec.status_name, rec.reason]).toEqual([
          'failed',
          `cannot start: working directory ${k === 0 ? closed : join(closed, 'sub')} is not accessible to the worker's user nobody (permission denied)`,
        ]);
      }
    } finally {
      await closeContext(ctx);
    }
  });
});
