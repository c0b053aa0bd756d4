// A worker run as an ordinary user (as on most Slurm sites), started here by root as nobody: what it may not
// do must be said as such, not disguised as the command's failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { BIN, runJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext, waitFinalRecord } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { processesMatching } from '../helpers/processes.js';
import { asRoot, describeIf, describeUnless } from '../helpers/requirements.js';

const NOBODY = 65534;

/**
 * Why user nobody cannot run the checkout's jtm, or undefined: a clone under a private directory (`mktemp -d`
 * makes one 0700) is out of its reach, whoever runs the tests; not something an install step could change.
 */
function outOfNobodysReach(): string | undefined {
  if (process.getuid?.() !== 0) return undefined; // asRoot below says why
  const probe = spawnSync(process.execPath, ['-e', 'require("fs").accessSync(process.argv[1], 4)', BIN], {
    uid: NOBODY,
    gid: NOBODY,
    stdio: 'ignore',
  });
  return probe.status === 0 ? undefined : `user nobody cannot read ${BIN} (a parent directory is private)`;
}

describeUnless(outOfNobodysReach(), 'a worker run as an ordinary user', () =>
  describeIf(asRoot('starts a worker as another user'), 'as nobody', nonRootWorkerRows),
);

function nonRootWorkerRows(): void {
  // Made in beforeAll, not in the suite's body: a skipped suite's body still runs (to list its tests) and no
  // hook of a file whose tests are all skipped runs, so what the body made was left behind (each gate left two
  // directories); and as a non-root user its chown failed the whole file (EPERM) instead of skipping it.
  let work = '';
  let env: Record<string, string> = {};
  let log = '';
  let worker: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  beforeAll(() => {
    work = tempDir('jtm-nonroot-');
    env = testEnv({ JTM_LOG_DIR: join(work, 'log'), HOME: work });
    chmodSync(work, 0o755);
    mkdirSync(env['JTM_LOG_DIR']!, { recursive: true });
    chownSync(env['JTM_LOG_DIR']!, NOBODY, NOBODY);
    const w = spawn(process.execPath, [BIN, 'worker', '-p', 'nr'], {
      env,
      cwd: '/',
      uid: NOBODY,
      gid: NOBODY,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker = w;
    exited = new Promise(r => w.on('exit', r));
    w.stderr.on('data', d => (log += d));
  });
  afterAll(async () => {
    worker?.kill('SIGTERM');
    await exited;
    rmSync(work, { recursive: true, force: true });
  });

  it('a detached daemon that made itself non-dumpable (ssh-agent does) is ended with its task (adversary 12 D10)', async () => {
    // Its /proc/<pid>/environ is unreadable to its own user then: the token scan never found it, and it outlived
    // its task's end, a timeout and every sweep. The task's shell, its subreaper, keeps it in the tree.
    await waitWorkers(env, 'nr', 1, 30_000);
    const daemon = (n: number): string =>
      `python3 -c 'import ctypes, os, time
if os.fork() > 0: os._exit(0)
os.setsid()
if os.fork() > 0: os._exit(0)
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
time.sleep(${n})'`;
    const ended = taskIds(
      (await runJtm(['submit', '-p', 'nr', '-cmd', `${daemon(4861)}; sleep 1`], env, { cwd: '/' })).stdout,
    )[0]!;
    const timed = taskIds(
      (
        await runJtm(['submit', '-p', 'nr', '--timeout', '2s', '-cmd', `${daemon(4862)}; sleep 100`], env, {
          cwd: '/',
        })
      ).stdout,
    )[0]!;
    const ctx = await openTestContext(env);
    try {
      const e = await waitFinalRecord(ctx, ended);
      expect(e.status_name).toBe('success');
      expect((e.leftover_pids ?? '').split(',').filter(Boolean)).toHaveLength(1);
      expect((await waitFinalRecord(ctx, timed)).status_name).toBe('timeout');
      await waitFor(
        () => (processesMatching('time.sleep\\(486[12]\\)').length === 0 ? true : undefined),
        'no daemon left',
        10_000,
      ).catch(() => undefined);
      expect(processesMatching('time.sleep\\(486[12]\\)')).toEqual([]);
    } finally {
      await closeContext(ctx);
    }
  });

  it('a process of the task it may not signal (a setuid program, sudo -u other) is named in the reason, not counted killed (adversary 12 D11)', async ({
    skip,
  }) => {
    // A setuid-root program that becomes another user (uid 1) and sleeps: the worker (nobody) gets EPERM. It was
    // "killed on request (2 processes)", with "processes survived SIGKILL" in the worker's log only.
    const helper = join(work, 'become-daemon');
    const built = spawnSync('cc', ['-x', 'c', '-o', helper, '-'], {
      input:
        '#include <unistd.h>\n#include <stdlib.h>\nint main(int c, char **v) { if (setgid(1) || setuid(1)) return 9; sleep(atoi(v[1])); return 0; }\n',
    });
    if (built.status !== 0) skip('no C compiler to build the setuid helper');
    chmodSync(helper, 0o4755);
    await waitWorkers(env, 'nr', 1, 30_000);
    const id = taskIds(
      (await runJtm(['submit', '-p', 'nr', '-cmd', `${helper} 4871 & sleep 100`], env, { cwd: '/' })).stdout,
    )[0]!;
    const ctx = await openTestContext(env);
    try {
      await waitFor(
        () => (processesMatching(`become-daemon 4871`).length > 0 ? true : undefined),
        'the helper',
      );
      await waitFor(async () => ((await ctx.tasks.get(id))?.status === 3 ? true : undefined), 'running');
      expect((await runJtm(['kill', '-tid', String(id)], env)).code).toBe(0);
      const rec = await waitFinalRecord(ctx, id);
      expect(rec.status_name).toBe('terminated');
      expect(rec.reason).toMatch(
        /^killed on request \(\d+ process(es)?\); 1 process of another user could not be ended \(EPERM: \d+\)$/,
      );
    } finally {
      await closeContext(ctx);
      for (const pid of processesMatching('become-daemon 4871')) process.kill(pid, 'SIGKILL');
    }
  });

  it("jtm logs by another user who may not read the task's file: the Redis copy, and a warning that says so (adversary 12 D6)", async () => {
    await waitWorkers(env, 'nr', 1, 30_000);
    const id = taskIds(
      (
        await runJtm(['submit', '-p', 'nr', '-cmd', "head -c 200000 /dev/zero | tr '\\0' x"], env, {
          cwd: '/',
        })
      ).stdout,
    )[0]!;
    const ctx = await openTestContext(env);
    try {
      await waitFor(async () => ((await ctx.tasks.get(id))?.status === 4 ? true : undefined), 'success');
    } finally {
      await closeContext(ctx);
    }
    // uid 1 (daemon): the worker's log dir is private to nobody.
    const r = spawnSync(process.execPath, [BIN, 'logs', '-tid', String(id)], {
      env,
      uid: 1,
      gid: 1,
      encoding: 'latin1',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('x'.repeat(65_536));
    expect(r.stderr).toContain(
      `the whole output is in ${join(env['JTM_LOG_DIR']!, 'tasks', `${id}.out`)}, which this user cannot read (EACCES)`,
    );
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
        const rec = await waitFinalRecord(ctx, id);
        expect([rec.status_name, rec.reason]).toEqual([
          'failed',
          `cannot start: working directory ${k === 0 ? closed : join(closed, 'sub')} is not accessible to the worker's user nobody (permission denied)`,
        ]);
      }
    } finally {
      await closeContext(ctx);
    }
  });
}
