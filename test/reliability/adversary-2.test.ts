import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, inject, it } from 'vitest';

import { TaskStatus } from '../../src/tasks/status.js';
import { fullDiskReason } from '../../src/worker/disk-space.js';
import { runJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { describeIf, type Requirement } from '../helpers/requirements.js';
import { context, start, stopTracked } from '../helpers/tracked.js';

// What the tests started (tracked.ts), stopped after them.
afterAll(stopTracked);

/*
 * Defects the second adversarial tester (README only) found on cfe1168: D4, D5, D1, D2 of its report.
 */
describe('D4: check-worker uses the worker’s own heartbeat, as pools and the manager do', () => {
  it('counts a live worker started with -hb 60s long after the reader’s own window (3 × 500 ms)', async () => {
    const env = testEnv();
    start(['worker', '-p', 'hblong', '-hb', '60s'], env);
    await waitWorkers(env, 'hblong');
    const ctx = await context(env);
    // Past the reader's window (JTM_HEARTBEAT_INTERVAL 500 ms × 3) since the worker's only beat so far.
    await waitFor(async () => {
      const ids = await ctx.redis.zrange(ctx.keys.workers, 0, -1, 'WITHSCORES');
      const last = Number(ids[1] ?? Date.now());
      return Date.now() - last > 2500;
    }, 'the worker’s last beat to be older than the reader’s window');
    const r = await runJtm(['check-worker', '-p', 'hblong'], env);
    expect(r.stdout.trim(), r.stderr).toBe('1');
    expect(r.code).toBe(0);
  });
});

describe('D1: a heartbeat that cannot keep the lease', () => {
  it('-hb and JTM_HEARTBEAT_INTERVAL below 500ms, and JTM_MISSED_BEATS below 3, are refused with one line, exit 1', async () => {
    const env = testEnv();
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['worker', '-p', 'x', '-hb', '5ms'], {}, /^jtm worker: -hb 5ms is too short: .*at least 500ms/],
      [['worker', '-p', 'x', '-hb', '0.2s'], {}, /^jtm worker: -hb 0\.2s is too short/],
      [['worker', '-p', 'x'], { JTM_HEARTBEAT_INTERVAL: '50ms' }, /JTM_HEARTBEAT_INTERVAL=50ms is too short/],
      [
        ['worker', '-p', 'x'],
        { JTM_MISSED_BEATS: '2' },
        /^jtm worker: JTM_MISSED_BEATS=2 must be at least 3/,
      ],
      [
        ['manager'],
        { JTM_HEARTBEAT_INTERVAL: '100ms' },
        /^jtm manager: JTM_HEARTBEAT_INTERVAL=100ms is too short/,
      ],
    ];
    for (const [args, extra, line] of cases) {
      const r = await runJtm(args, { ...env, ...extra });
      expect(r.code, `${args.join(' ')} ${JSON.stringify(extra)}: ${r.stderr}`).toBe(1);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(line);
      expect(r.stdout).toBe('');
    }
    // Commands that do not use the lease are not refused for it: isalive must not answer "dead" (exit 1).
    const r = await runJtm(['isalive', '-tid', '999999'], { ...env, JTM_HEARTBEAT_INTERVAL: '100ms' });
    expect(r.stderr).toBe('');
  });

  // A task given back by self-fencing more than JTM_TASK_RETRIES + 1 times ends lostconnection: in-process in
  // test/store/lease-losses.test.ts. It was tested here by pausing Redis, which is now an outage every worker
  // sees and is not counted against the task (adversary 16 Q2: test/reliability/redis-pause.test.ts).
});

describe('D5: a connection that cannot work is a configuration error (exit 255 at once), not an outage', () => {
  const dir = tempDir('jtm-adv2-tls-');
  const notPem = join(dir, 'ca.txt');
  writeFileSync(notPem, 'this is not a certificate\n');
  const plainUrl = inject('redisUrl');
  const tlsUrl = plainUrl.replace(/^redis:/, 'rediss:');
  const cases: [name: string, extra: Record<string, string>, line: RegExp][] = [
    ['rediss:// against a plain Redis', { REDIS_URL: tlsUrl }, /answers without TLS: use redis:\/\//],
    [
      'JTM_REDIS_TLS_CA that is not a certificate',
      { REDIS_URL: tlsUrl, JTM_REDIS_TLS_CA: notPem },
      new RegExp(`JTM_REDIS_TLS_CA=${notPem} is not a PEM certificate`),
    ],
    [
      'JTM_REDIS_TLS_CA that is a directory',
      { REDIS_URL: tlsUrl, JTM_REDIS_TLS_CA: dir },
      new RegExp(`JTM_REDIS_TLS_CA=${dir} is a directory`),
    ],
    [
      'JTM_REDIS_TLS_CA with a plain redis:// URL',
      { REDIS_URL: plainUrl, JTM_REDIS_TLS_CA: notPem },
      /JTM_REDIS_TLS_CA set but REDIS_URL redis:\/\/\S+ is not TLS: use rediss:\/\//,
    ],
    ['a port out of range', { REDIS_URL: 'redis://127.0.0.1:99999' }, /port "99999" is not a port/],
    // Adversary 15 P12: the server answers that it is no Cluster node; isalive answered unknown for ever.
    [
      'redis+cluster:// against a plain Redis',
      { REDIS_URL: plainUrl.replace(/^redis:/, 'redis+cluster:') },
      /is not a Redis Cluster node \(cluster support disabled/,
    ],
  ];
  for (const [name, extra, line] of cases) {
    it(`${name}: isalive exits 255 with one line instead of answering unknown`, async () => {
      const env = testEnv({ JTM_ISALIVE_RETRY: '30s', ...extra });
      const t0 = Date.now();
      const r = await runJtm(['isalive', '-tid', '1'], env);
      expect(r.code, r.stdout + r.stderr).toBe(255);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/^jtm isalive: /);
      expect(r.stderr).toMatch(line);
      // Not after JTM_ISALIVE_RETRY (30 s): at most the connect timeout (2 s here, twice under load) and a probe.
      expect(Date.now() - t0).toBeLessThan(15_000);
    });
  }
});

/** Mounts a 2 MB tmpfs on a fresh directory (root only); unmounted after the file. */
const mounts: string[] = [];
function smallDisk(): string {
  const dir = tempDir('jtm-adv2-disk-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount tmpfs on ${dir}: ${r.stderr}`);
  mounts.push(dir);
  return dir;
}
/** Fills the filesystem holding `dir` (the write stops at ENOSPC); returns the file to delete for space. */
function fill(dir: string): string {
  const file = join(dir, 'fill');
  spawnSync('sh', ['-c', `head -c 4000000 /dev/zero > ${file}`]);
  return file;
}
afterAll(() => {
  for (const m of mounts.splice(0)) spawnSync('umount', ['-l', m]);
});

const root: Requirement =
  process.getuid?.() === 0
    ? { available: true }
    : { available: false, reason: 'mounting a small tmpfs needs root' };

describeIf(root, 'D2: a full disk', () => {
  it('a task that fails writing to a full disk says so in its reason', async () => {
    const env = testEnv();
    const disk = smallDisk();
    fill(disk);
    start(['worker', '-p', 'diskreason'], env);
    await waitWorkers(env, 'diskreason');
    const file = join(env['JTM_LOG_DIR']!, 'task.json');
    const out = join(disk, 'task.out');
    writeFileSync(file, JSON.stringify({ command: 'echo ok', stdout: out, pool: { name: 'diskreason' } }));
    const [id] = taskIds((await runJtm(['submit', '-f', file], env)).stdout);
    const ctx = await context(env);
    await waitFor(async () => (await ctx.tasks.status(id!)) === TaskStatus.failed, 'task failed');
    const rec = await ctx.tasks.get(id!);
    expect(rec!.reason).toBe(`exit code 1; the disk holding ${disk} is full: 0 bytes free`);
  });

  it('a read-only disk is not called full (adversary 38 L3: "EROFS …; the disk … is full: 64 KB free")', async () => {
    const disk = smallDisk();
    fill(disk);
    expect(await fullDiskReason([join(disk, 'task.out')])).toMatch(/is full/);
    const r = spawnSync('mount', ['-o', 'remount,ro', disk], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(await fullDiskReason([join(disk, 'task.out')])).toBeUndefined();
  });

  it('a task that fills the log dir’s disk fails alone: the tasks queued behind it wait for space', async () => {
    const disk = smallDisk();
    const env = testEnv({ JTM_LOG_DIR: join(disk, 'log') });
    const worker = start(['worker', '-p', 'diskfill'], env);
    await waitWorkers(env, 'diskfill');
    // One file: the filler first, then five that only need a few bytes of the same disk.
    const file = join(tempDir('jtm-adv2-tasks-'), 'tasks.jsonl');
    const lines = [
      { command: '/usr/bin/head -c 3000000 /dev/zero' },
      ...Array(5).fill({ command: '/bin/echo next' }),
    ];
    writeFileSync(
      file,
      lines.map(t => JSON.stringify({ ...t, pool: { name: 'diskfill' } })).join('\n') + '\n',
    );
    const [filler, ...rest] = taskIds((await runJtm(['submit', '-f', file], env)).stdout);
    const ctx = await context(env);
    await waitFor(async () => (await ctx.tasks.status(filler!)) === TaskStatus.failed, 'the filler failed');
    await waitFor(
      () => /taking no task until space returns/.test(worker.output()),
      'the worker taking no task',
    );
    // Before: each was claimed on a reading of the disk from before the filler, and failed at once.
    for (const id of rest) expect(await ctx.tasks.status(id)).not.toBe(TaskStatus.failed);
    rmSync(join(disk, 'log', 'tasks', `${filler}.out`));
    for (const id of rest)
      await waitFor(
        async () => (await ctx.tasks.status(id)) === TaskStatus.success,
        `task ${id} success`,
        30_000,
      );
  }, 90_000);

  it('a worker whose log dir’s disk is full takes no task until space returns, and says why', async () => {
    const disk = smallDisk();
    const env = testEnv({ JTM_LOG_DIR: join(disk, 'log') });
    const worker = start(['worker', '-p', 'diskfull'], env);
    await waitWorkers(env, 'diskfull');
    const filler = fill(disk);
    const [id] = taskIds((await runJtm(['submit', '-cmd', 'echo ok', '-p', 'diskfull'], env)).stdout);
    await waitFor(
      () => /is full \(0 bytes free, below 1 MB\): taking no task until space returns/.test(worker.output()),
      'the worker saying why it takes no task',
    );
    const ctx = await context(env);
    expect(await ctx.tasks.status(id!)).not.toBe(TaskStatus.failed);
    rmSync(filler);
    await waitFor(async () => (await ctx.tasks.status(id!)) === TaskStatus.success, 'task success', 30_000);
    expect(worker.output()).toMatch(/the log dir has free space again: taking tasks/);
  }, 60_000);

  it('a worker whose log dir’s disk is full is not counted by check-worker; pools says why; counted again after', async () => {
    // Adversary 36 M3: such a worker took no task, yet check-worker counted its slots as live (2, exit 0). No
    // task is queued here: the worker reads its disk with its heartbeat, not only when it has a task to claim.
    const disk = smallDisk();
    const env = testEnv({ JTM_LOG_DIR: join(disk, 'log') });
    start(['worker', '-p', 'diskcount', '--slots', '2'], env);
    await waitWorkers(env, 'diskcount');
    const count = async (): Promise<[number | null, string]> => {
      const r = await runJtm(['check-worker', '-p', 'diskcount'], env);
      return [r.code, r.stdout.trim()];
    };
    expect(await count()).toEqual([0, '2']);
    const filler = fill(disk);
    await waitFor(
      async () => (await count())[1] === '0' || undefined,
      'check-worker to stop counting the worker',
      20_000,
    );
    expect(await count()).toEqual([1, '0']);
    const pools = JSON.parse((await runJtm(['pools', '--json'], env)).stdout) as Record<string, unknown>[];
    expect(pools.find(p => p['name'] === 'diskcount')).toMatchObject({
      live_slots: 0,
      paused_workers: 1,
      paused_slots: 2,
      paused: ['log dir full'],
      paused_why: [
        expect.stringMatching(/the disk holding the log dir .* is full \(0 bytes free, below 1 MB\)/),
      ],
    });
    expect((await runJtm(['pools'], env)).stdout).toMatch(
      /diskcount\s+manual\s+0 \+1 paused \(log dir full\)\s+0 \+2 paused \(log dir full\)/,
    );
    rmSync(filler);
    await waitFor(
      async () => (await count())[1] === '2' || undefined,
      'check-worker to count it again',
      20_000,
    );
    expect(await count()).toEqual([0, '2']);
  }, 90_000);
});
