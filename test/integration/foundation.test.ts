import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import {
  runJtm,
  startJtm,
  taskIds,
  type BackgroundProcess,
  statusOf,
  waitStatus,
  waitWorkers,
} from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';

describe('submit → pool queue → worker → status', () => {
  const env = testEnv();
  let worker: BackgroundProcess;
  let ctx: JtmContext;
  const work = tempDir('jtm-work-');

  beforeAll(async () => {
    ctx = await openTestContext(env);
    worker = startJtm(['worker', '-p', 'main', '--slots', '3'], env);
    await waitWorkers(env, 'main', 3);
  });
  afterAll(async () => {
    await worker.stop();
    await closeContext(ctx);
  });

  it('prints exactly one id line, then runs the task to success', async () => {
    const r = await runJtm(['submit', '-cmd', 'echo hello', '-p', 'main'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^JTM task ID \d+\n$/);
    const [id] = taskIds(r.stdout);
    await waitStatus(env, id!, 'success');
    const s = await runJtm(['status', '-tid', String(id)], env);
    expect(s.code).toBe(1);
    const alive = await runJtm(['isalive', '-tid', String(id)], env);
    expect(alive.stdout.trim()).toBe('no');
    expect(alive.code).toBe(1);
    const rec = await ctx.tasks.get(id!);
    expect(rec).toMatchObject({
      status: 4,
      exit_code: 0,
      worker_id: expect.any(String),
      host: expect.any(String),
    });
    expect(rec?.started_at).toBeGreaterThanOrEqual(rec?.queued_at ?? 0);
    expect(rec?.ended_at).toBeGreaterThanOrEqual(rec?.started_at ?? 0);
    expect(readFileSync(join(env['JTM_LOG_DIR']!, 'tasks', `${id}.out`), 'utf8')).toBe('hello\n');
  });

  it('records the real exit code of a failing command, and "command not found" for 127', async () => {
    const [a] = taskIds(
      (await runJtm(['submit', '-cmd', 'echo oops >&2; exit 3', '-p', 'main'], env)).stdout,
    );
    const [b] = taskIds((await runJtm(['submit', '-cmd', 'no-such-command-xyz', '-p', 'main'], env)).stdout);
    await waitStatus(env, a!, 'failed');
    await waitStatus(env, b!, 'failed');
    expect(await ctx.tasks.get(a!)).toMatchObject({ status: -2, exit_code: 3, reason: 'exit code 3' });
    expect(await ctx.tasks.get(b!)).toMatchObject({
      status: -2,
      exit_code: 127,
      reason: 'command not found',
    });
    expect(readFileSync(join(env['JTM_LOG_DIR']!, 'tasks', `${a}.err`), 'utf8')).toBe('oops\n');
  });

  it('runs commands with quotes, pipes, redirections, variables and newlines through bash', async () => {
    const out = join(work, 'shell.txt');
    const command = `X="a b"; echo "$X" | tr a-z A-Z > '${out}'\necho 'single "double"' >> ${out}; echo $((6*7)) >> ${out}`;
    const [id] = taskIds((await runJtm(['submit', '-cmd', command, '-p', 'main'], env)).stdout);
    await waitStatus(env, id!, 'success');
    expect(readFileSync(out, 'utf8')).toBe('A B\nsingle "double"\n42\n');
  });

  it('honours output_dir, stdout and stderr of a task file', async () => {
    const file = join(work, 'task.json');
    writeFileSync(
      file,
      JSON.stringify({
        command: 'pwd; echo e >&2',
        output_dir: work,
        stdout: 'o.txt',
        stderr: 'e.txt',
        pool: { name: 'main' },
      }),
    );
    const [id] = taskIds((await runJtm(['submit', '-f', file], env)).stdout);
    await waitStatus(env, id!, 'success');
    expect(readFileSync(join(work, 'o.txt'), 'utf8')).toBe(`${work}\n`);
    expect(readFileSync(join(work, 'e.txt'), 'utf8')).toBe('e\n');
  });

  it('fails a task whose working directory does not exist, with a reason', async () => {
    const file = join(work, 'nodir.json');
    writeFileSync(
      file,
      JSON.stringify({ command: 'true', output_dir: '/nonexistent/dir', pool: { name: 'main' } }),
    );
    const [id] = taskIds((await runJtm(['submit', '-f', file], env)).stdout);
    await waitStatus(env, id!, 'failed');
    expect((await ctx.tasks.get(id!))?.reason).toMatch(/does not exist/);
  });

  it('gives global ids, unique across pools, and answers unknown ids with invalidtask', async () => {
    const a = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'other1'], env)).stdout)[0]!;
    const b = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'other2'], env)).stdout)[0]!;
    expect(b).toBe(a + 1);
    expect(await statusOf(env, a)).toBe('pending');
    expect((await runJtm(['isalive', '-tid', String(a)], env)).stdout.trim()).toBe('yes');
    const unknown = await runJtm(['status', '-tid', '999999'], env);
    expect(unknown.stdout.trim()).toBe('invalidtask');
    expect(unknown.code).toBe(1);
    const dead = await runJtm(['isalive', '-tid', '999999'], env);
    expect([dead.stdout.trim(), dead.code]).toEqual(['no', 1]);
  });

  it('status --json prints the whole record with its history', async () => {
    const [id] = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'main'], env)).stdout);
    await waitStatus(env, id!, 'success');
    const r = await runJtm(['status', '-tid', String(id), '--json'], env);
    const rec = JSON.parse(r.stdout) as { status_name: string; events: { to: number }[] };
    expect(rec.status_name).toBe('success');
    expect(rec.events.map(e => e.to)).toEqual([1, 2, 3, 4]);
  });

  it('submits a batch file (JSON lines) in order, one id line per task', async () => {
    const file = join(work, 'batch.jsonl');
    writeFileSync(file, ['{"command":"echo 1"}', '{"command":"echo 2"}', '{"command":"exit 1"}'].join('\n'));
    const r = await runJtm(['submit', '-f', file, '-p', 'main'], env);
    const ids = taskIds(r.stdout);
    expect(ids).toHaveLength(3);
    expect(ids[1]).toBe(ids[0]! + 1);
    await waitStatus(env, ids[2]!, 'failed');
    await waitStatus(env, ids[0]!, 'success');
  });
});

describe('Redis unreachable', () => {
  const env = testEnv({
    REDIS_URL: 'redis://127.0.0.1:1',
    JTM_CONNECT_TIMEOUT: '1s',
    JTM_ISALIVE_RETRY: '1s',
  });
  it('submit and status fail fast with one clear line and exit 255', async () => {
    for (const args of [
      ['submit', '-cmd', 'ls', '-p', 'x'],
      ['status', '-tid', '1'],
      ['kill', '-tid', '1'],
      ['check-worker'],
    ]) {
      const t0 = Date.now();
      const r = await runJtm(args, env);
      expect(Date.now() - t0).toBeLessThan(8000);
      expect(r.code).toBe(255);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim()).toMatch(/^jtm \S+: cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
  it('isalive answers unknown with exit 0, so Cromwell does not declare the job dead', async () => {
    const r = await runJtm(['isalive', '-tid', '1'], env);
    expect(r.stdout.trim()).toBe('unknown');
    expect(r.code).toBe(0);
  });
  it('masks the password of the URL in messages', async () => {
    const r = await runJtm(['status', '-tid', '1'], { ...env, REDIS_URL: 'redis://jtm:s3cret@127.0.0.1:1' });
    expect(r.stderr).toContain('redis://jtm:***@127.0.0.1:1');
    expect(r.stderr).not.toContain('s3cret');
  });
});

describe('worker shutdown', () => {
  it('SIGTERM lets a short task finish, and gives a long one back to the queue after the grace period', async () => {
    const env = testEnv();
    const ctx = await openTestContext(env);
    const w = startJtm(['worker', '-p', 'gs', '--slots', '2', '--shutdown-grace', '3s'], env);
    await waitWorkers(env, 'gs');
    // The short task runs until released once the worker has begun its stop (a fixed 3 s before, under a 6 s grace):
    // still running when the stop comes, whatever the load, and done well within the grace.
    const release = join(env['JTM_LOG_DIR']!, 'release');
    const [shortId] = taskIds(
      (
        await runJtm(
          ['submit', '-cmd', `while [ ! -e ${release} ]; do sleep 0.1; done; echo done`, '-p', 'gs'],
          env,
        )
      ).stdout,
    );
    const [longId] = taskIds((await runJtm(['submit', '-cmd', 'sleep 60', '-p', 'gs'], env)).stdout);
    // Read the records directly: a cold `jtm status` per poll could miss a short running window on a busy machine.
    await waitFor(async () => (await ctx.tasks.status(shortId!)) === 3, 'short task to run');
    await waitFor(async () => (await ctx.tasks.status(longId!)) === 3, 'long task to run');
    await closeContext(ctx);
    const stopped = w.stop('SIGTERM');
    await waitFor(() => /worker stopping/.test(w.output()) || undefined, 'the worker to begin its stop');
    writeFileSync(release, '');
    const code = await stopped;
    expect(code).toBe(0);
    expect(await statusOf(env, shortId!)).toBe('success');
    expect(await statusOf(env, longId!)).toBe('pending');
    const count = await runJtm(['check-worker', '-p', 'gs'], env);
    expect([count.stdout.trim(), count.code]).toEqual(['0', 1]);
    // A fresh worker takes the re-queued task.
    const w2 = startJtm(['worker', '-p', 'gs'], env);
    await waitStatus(env, longId!, 'running');
    await runJtm(['kill', '-tid', String(longId)], env);
    await waitStatus(env, longId!, 'terminated');
    await w2.stop();
  });
});

describe('worker shutdown, a second signal', () => {
  it('stops at once: a task that ignores TERM is killed without the kill grace, and given back (adversary 34 M7)', async () => {
    // A kill grace far longer than the test: before, the worker said "second signal: stopping now" and ran on until
    // the task ended by itself.
    const env = testEnv({ JTM_KILL_GRACE: '10m' });
    const ctx = await openTestContext(env);
    const w = startJtm(['worker', '-p', 'gs2', '--shutdown-grace', '500ms'], env);
    try {
      await waitWorkers(env, 'gs2');
      const [id] = taskIds(
        (await runJtm(['submit', '-cmd', 'trap "" TERM; sleep 300', '-p', 'gs2'], env)).stdout,
      );
      await waitFor(async () => (await ctx.tasks.status(id!)) === 3, 'the task to run');
      w.child.kill('SIGTERM');
      // Past the shutdown grace: the kill has begun (TERM sent, ignored), its 10 min grace running.
      await waitFor(() => /worker stopping/.test(w.output()) || undefined, 'the worker to begin its stop');
      await new Promise(r => setTimeout(r, 1500));
      expect(w.child.exitCode).toBeNull();
      const at = Date.now();
      w.child.kill('SIGTERM');
      const code = await Promise.race([
        w.exited,
        new Promise(r => setTimeout(() => r('still running'), 15_000)),
      ]);
      expect(code, w.output().slice(-2000)).toBe(0);
      expect(Date.now() - at).toBeLessThan(15_000);
      expect(await statusOf(env, id!)).toBe('pending');
    } finally {
      await closeContext(ctx);
      // SIGKILL: a worker that did not stop at the second signal would not at a third either.
      await w.stop('SIGKILL');
    }
  });
});

describe("the original's command line", () => {
  const env = testEnv();
  const dir = tempDir('jtm-legacy-');
  const legacyBin = (name: string): string => {
    const p = join(dir, name);
    writeFileSync(p, `import '${join(process.cwd(), 'bin', 'run.js')}';\n`);
    return p;
  };
  it('accepts -cmd, -cr, -tid, -jid, -nwpn, -cl and global flags before the command', async () => {
    const a = await runJtm(
      [
        'submit',
        '-cmd',
        'ls',
        '-p',
        'leg',
        '-cl',
        'local',
        '-nwpn',
        '2',
        '-N',
        '1',
        '-c',
        '2',
        '-m',
        '4.5',
        '-t',
        '00:10:00',
        '-s',
        '1',
        '-jid',
        'cromwell_abc_x',
      ],
      env,
    );
    expect(a.code).toBe(0);
    const [id] = taskIds(a.stdout);
    const ctx = await openTestContext(env);
    expect((await ctx.tasks.get(id!))?.pool_spec).toMatchObject({
      name: 'leg',
      cluster: 'local',
      nwpn: 2,
      node: 1,
      cpu: 2,
      mem: '4608M',
      time: '00:10:00',
    });
    await closeContext(ctx);
    const cfg = join(dir, 'jtm.env');
    writeFileSync(cfg, `JTM_PREFIX=${env['JTM_PREFIX']}\n`);
    const { JTM_PREFIX: _omit, ...noPrefix } = env;
    void _omit;
    const g = await runJtm([`--config=${cfg}`, 'isalive', '-tid', String(id)], noPrefix);
    expect(g.stdout.trim()).toBe('yes');
    const g2 = await runJtm(['--debug', '--config', cfg, 'status', '-tid', String(id)], noPrefix);
    expect(g2.stdout.trim()).toBe('pending');
    const cr = await runJtm(['submit', '-cr', 'echo "-n" starts with a dash', '-p', 'leg'], env);
    expect(taskIds(cr.stdout)).toHaveLength(1);
  });
  it('runs under the legacy names jtm-submit, jtm-isalive, jtm-status, jtm-kill', async () => {
    const r = await runJtm(['-cr', 'ls', '-p', 'leg2'], env, { argv0: legacyBin('jtm-submit') });
    expect(r.code).toBe(0);
    const [id] = taskIds(r.stdout);
    const alive = await runJtm([String(id)], env, { argv0: legacyBin('jtm-isalive') });
    expect(alive.stdout.trim()).toBe('yes');
    const status = await runJtm([String(id)], env, { argv0: legacyBin('jtm-status') });
    expect(status.stdout.trim()).toBe('pending');
    const kill = await runJtm([String(id)], env, { argv0: legacyBin('jtm-kill') });
    expect(kill.code).toBe(0);
    expect((await runJtm([String(id)], env, { argv0: legacyBin('jtm-status') })).stdout.trim()).toBe(
      'terminated',
    );
  });
});
