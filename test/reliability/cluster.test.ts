import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  runJtm,
  startJtm,
  statusOf,
  taskIds,
  type BackgroundProcess,
  waitManager,
  waitStatusShown,
  waitWorkers,
} from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { connect } from '../../src/index.js';
import { createMetricsRegistry } from '../../src/metrics/registry.js';
import { Keys } from '../../src/redis/keys.js';
import { keySlot, keysFor, shardOfPool } from '../../src/redis/shards.js';
import { openPoolQueue } from '../../src/tasks/pool-queue.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { redisCli, startCluster } from './servers.js';

describe('Redis Cluster (3 masters, redis+cluster:// URL, {prefix} hash tag)', () => {
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  let env: Record<string, string>;
  let worker: BackgroundProcess | undefined;
  beforeAll(async () => {
    cluster = await startCluster();
    env = testEnv({ REDIS_URL: cluster.url });
  });
  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await cluster?.stop();
  });

  it('runs submit, worker, status, isalive, check-worker and kill', async () => {
    worker = startJtm(['worker', '-p', 'cl', '--slots', '2'], env);
    await waitWorkers(env, 'cl', 2, 30_000);
    const r = await runJtm(['submit', '-cmd', 'echo on-cluster', '-p', 'cl'], env);
    expect(r.code).toBe(0);
    const [ok] = taskIds(r.stdout);
    const [bad] = taskIds((await runJtm(['submit', '-cmd', 'exit 4', '-p', 'cl'], env)).stdout);
    await waitStatusShown(env, ok!, 'success');
    await waitStatusShown(env, bad!, 'failed');
    const [long] = taskIds((await runJtm(['submit', '-cmd', 'sleep 60', '-p', 'cl'], env)).stdout);
    await waitStatusShown(env, long!, 'running');
    expect((await runJtm(['isalive', '-tid', String(long)], env)).stdout.trim()).toBe('yes');
    // A kill reaches the worker over pub/sub on the cluster.
    const k = await runJtm(['kill', '-tid', String(long)], env);
    expect(k.code).toBe(0);
    expect(await statusOf(env, long!)).toBe('terminated');
    const ctx = await openTestContext(env);
    try {
      expect(await ctx.tasks.get(bad!)).toMatchObject({ status: -2, exit_code: 4 });
    } finally {
      await closeContext(ctx);
    }
    expect(worker.output()).not.toMatch(/"level":(50|60)/);
    const stop = await worker.stop('SIGTERM');
    expect(stop).toBe(0);
    expect((await runJtm(['check-worker', '-p', 'cl'], env)).stdout.trim()).toBe('0');
  });

  it('a bulk submit far longer than the command limit succeeds: no command waits behind all the others', async () => {
    // A Cluster client's commands fail after 10 × JTM_CONNECT_TIMEOUT (here 2 s). Every chunk of a submit was sent
    // at once, so the last ones waited for all the others: an 80,000-task `submit -f` failed 255 "Command timed
    // out" at this limit (200,000 at the default 30 s). Now a few chunks are in flight at a time.
    const limited = { ...env, JTM_CONNECT_TIMEOUT: '200ms' };
    const n = 100_000;
    const dir = tempDir('jtm-bulk-');
    const file = join(dir, 'tasks.jsonl');
    writeFileSync(
      file,
      Array.from({ length: n }, (_, i) => `{"command":"echo ${i}","pool":{"name":"bulk"}}\n`).join(''),
    );
    try {
      // The 200 ms connection budget that gives the 2 s command limit may be too short to connect at all under
      // a full run's load: an honest 255 before anything is written ("cannot reach Redis"), tried again; the
      // test is about the commands of a submit that did connect (failed once so in a full run).
      const nothingWritten = async (): Promise<boolean> => {
        const ctx = await openTestContext(env);
        try {
          const queue = openPoolQueue(ctx, 'bulk');
          const none = (await queue.count()) === 0 && (await ctx.tasks.get(1)) === undefined;
          await queue.close();
          return none;
        } finally {
          await closeContext(ctx);
        }
      };
      let r = await runJtm(['submit', '-f', file], limited);
      for (
        let again = 0;
        again < 3 && r.code === 255 && /cannot reach Redis/.test(r.stderr) && (await nothingWritten());
        again++
      )
        r = await runJtm(['submit', '-f', file], limited);
      expect([r.code, r.stderr]).toEqual([0, '']);
      const ids = taskIds(r.stdout);
      expect(ids.length).toBe(n);
      const ctx = await openTestContext(env);
      try {
        expect(await ctx.tasks.get(ids[n - 1]!)).toMatchObject({
          command: `echo ${n - 1}`,
          status: TaskStatus.pending,
        });
        const queue = openPoolQueue(ctx, 'bulk');
        expect(await queue.count()).toBe(n);
        await queue.close();
      } finally {
        await closeContext(ctx);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('wrong credentials are said at once, as on one Redis: status, isalive and submit exit 255 naming them; a worker exits (adversary 35 F4)', async () => {
    for (const s of cluster.servers)
      redisCli(['-p', String(s.port), 'ACL', 'SETUSER', 'jtmc', 'on', '>right-pw', '~*', '&*', '+@all']);
    const wrong = {
      ...env,
      REDIS_URL: cluster.url.replace('redis+cluster://', 'redis+cluster://jtmc:wrong-pw@'),
    };
    for (const args of [
      ['status', '-tid', '1'],
      ['isalive', '-tid', '1'],
      ['submit', '-cmd', 'true', '-p', 'cp'],
    ]) {
      const at = Date.now();
      const r = await runJtm(args, wrong);
      expect([r.code, r.stderr], args.join(' ')).toEqual([255, expect.stringMatching(/WRONGPASS|password/i)]);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).not.toContain('wrong-pw');
      expect(Date.now() - at).toBeLessThan(5_000);
    }
    const w = await runJtm(['worker', '-p', 'cp'], wrong, { timeoutMs: 20_000 });
    expect([w.code, w.stderr]).toEqual([255, expect.stringMatching(/WRONGPASS|password/i)]);
  });

  it('with one shard, a JTM_PREFIX without braces is refused as the connection is made, in one line, writing nothing (adversary 40 L1)', async () => {
    // It failed only at submit, with CROSSSLOT, after writing the shard count.
    const prefix = `nb-${env['JTM_PREFIX']!.replace(/[{}]/g, '')}`;
    const untagged = { ...env, JTM_PREFIX: prefix, JTM_SHARDS: '1' };
    for (const args of [
      ['submit', '-cmd', 'true', '-p', 'cl-nb'],
      ['isalive', '-tid', '1'],
      ['status', '-tid', '1'],
      ['worker', '-p', 'cl-nb'],
    ]) {
      const r = await runJtm(args, untagged, { timeoutMs: 20_000 });
      expect([r.code, r.stdout], r.stderr).toEqual([255, '']);
      expect(r.stderr.trim().split('\n').at(-1)).toBe(
        `jtm ${args[0]}: JTM_PREFIX=${prefix} has no hash tag: on a Redis Cluster with JTM_SHARDS=1 every key of the site must share one slot, so the prefix needs braces (e.g. JTM_PREFIX={${prefix}}), or JTM_SHARDS above 1`,
      );
      if (args[0] !== 'worker') expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    for (const s of cluster.servers)
      expect(redisCli(['-p', String(s.port), '--scan', '--pattern', `${prefix}*`]).trim()).toBe('');
  });

  it('a plain redis:// URL naming a Cluster node says so in one line, exit 255, not the raw MOVED (adversary 40 L3)', async () => {
    // A node that does not hold the site's slot (it answers MOVED for its keys).
    const key = new Keys(env['JTM_PREFIX']!).shardCount;
    // Right after the cluster is made, a node may not know yet who holds the slot (CLUSTERDOWN): wait for a MOVED.
    const movedFrom = (): (typeof cluster.servers)[number] | undefined =>
      cluster.servers.find(s =>
        /MOVED/.test(
          spawnSync('redis-cli', ['-p', String(s.port), 'EXISTS', key], { encoding: 'utf8' }).stdout,
        ),
      );
    const other = await waitFor(movedFrom, "a node answering MOVED for the site's slot");
    const plain = { ...env, REDIS_URL: `redis://127.0.0.1:${other.port}` };
    for (const args of [
      ['isalive', '-tid', '1'],
      ['status', '-tid', '1'],
      ['submit', '-cmd', 'true', '-p', 'cl-plain'],
    ]) {
      const r = await runJtm(args, plain);
      expect([r.code, r.stdout], r.stderr).toEqual([255, '']);
      expect(r.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(
          new RegExp(
            `^jtm ${args[0]}: REDIS_URL redis://127\\.0\\.0\\.1:${other.port}: this is a Redis Cluster node \\(it answered MOVED \\d+ \\S+\\): use redis\\+cluster://$`,
          ),
        ),
      ]);
    }
  });
});

/** The cluster node (port) that holds `key`: EXISTS answers 1 there (the others answer MOVED). */
function holder(ports: readonly number[], key: string): number | undefined {
  return ports.find(p => redisCli(['-p', String(p), '--raw', 'EXISTS', key]).trim() === '1');
}

describe('Redis Cluster with JTM_SHARDS=3: pools spread over the 3 masters', () => {
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  let env: Record<string, string>;
  const workers: BackgroundProcess[] = [];
  let manager: BackgroundProcess | undefined;
  // One pool per shard, found with the routing itself (FNV-1a of the name mod 3).
  const pools = [0, 1, 2].map(k => {
    for (let i = 0; ; i++) if (shardOfPool(`sh${i}`, 3) === k) return `sh${i}`;
  });
  beforeAll(async () => {
    cluster = await startCluster();
    env = testEnv({ REDIS_URL: cluster.url, JTM_SHARDS: '3', JTM_PREFIX: `{s-${Date.now() % 100000}}` });
  });
  afterAll(async () => {
    await Promise.all([...workers, manager].map(p => p?.stop('SIGKILL')));
    await cluster?.stop();
  });

  it('routes pools and ids to their shard; status, isalive, logs and kill answer from the id; recovery on each shard; another JTM_SHARDS is refused', async () => {
    const ports = cluster.servers.map(s => s.port);
    for (const pool of pools) workers.push(startJtm(['worker', '-p', pool, '--slots', '1'], env));
    for (const pool of pools) await waitWorkers(env, pool!, 1, 30_000);
    // Counted over every shard by the command.
    expect((await runJtm(['check-worker'], env)).stdout.trim()).toBe('3');
    // One task per pool: each id names its shard (id mod 3), and each pool's keys are on its own master.
    const ids: number[] = [];
    for (const [k, pool] of pools.entries()) {
      const r = await runJtm(['submit', '-cmd', `echo out-${k}`, '-p', pool], env);
      expect(r.code, r.stderr).toBe(0);
      const [id] = taskIds(r.stdout);
      expect(id! % 3).toBe(k);
      ids.push(id!);
    }
    const prefix = env['JTM_PREFIX']!;
    const holders = [0, 1, 2].map(k => {
      const key = keysFor(prefix, k, 3).task(ids[k]!);
      expect(Number(redisCli(['-p', String(ports[0]), 'CLUSTER', 'KEYSLOT', key]).trim())).toBe(keySlot(key));
      return holder(ports, key);
    });
    expect(new Set(holders).size).toBe(3);
    expect(holder(ports, keysFor(prefix, 1, 3).pool(pools[1]!))).toBe(holders[1]);
    for (const [k, id] of ids.entries()) {
      await waitStatusShown(env, id, 'success');
      expect((await runJtm(['logs', '-tid', String(id)], env)).stdout).toBe(`out-${k}\n`);
    }
    // `jtm pools`, the run report and the metrics span every shard.
    const listed = JSON.parse((await runJtm(['pools', '--json'], env)).stdout) as { name: string }[];
    expect(listed.map(p => p.name).sort()).toEqual([...pools].sort());
    const report = await runJtm(['report', '--json'], env);
    expect(report.code, report.stderr).toBe(0);
    expect(JSON.parse(report.stdout)).toMatchObject({ tasks: 3, by_status: { success: 3 } });
    const metricsCtx = await openTestContext(env);
    try {
      const text = await createMetricsRegistry(metricsCtx).metrics();
      for (const pool of pools) expect(text).toContain(`jtm_tasks_submitted_total{pool="${pool}"} 1`);
    } finally {
      await closeContext(metricsCtx);
    }

    // A running task on each shard: isalive by id, then one killed by id.
    const running: number[] = [];
    for (const pool of pools) {
      running.push(taskIds((await runJtm(['submit', '-cmd', 'sleep 60', '-p', pool], env)).stdout)[0]!);
    }
    for (const id of running) {
      await waitStatusShown(env, id, 'running');
      expect((await runJtm(['isalive', '-tid', String(id)], env)).stdout.trim()).toBe('yes');
    }
    // A worker that starts on the node sweeps it for leftovers of lost runs a second later: it looked every
    // task up in its own shard, found no record for the other shards' and killed them (adversary 11 L8).
    const late = startJtm(['worker', '-p', pools[0]!, '--slots', '1'], env);
    workers.push(late);
    await waitFor(
      () => /leftover|live runs of other workers/.test(late.output()),
      'the late worker’s sweep',
      20_000,
    );
    expect(late.output()).not.toMatch(/killed leftover processes/);
    for (const id of running) expect(await statusOf(env, id)).toBe('running');
    await late.stop('SIGTERM');
    expect((await runJtm(['kill', '-tid', String(running[0])], env)).code).toBe(0);
    expect(await statusOf(env, running[0]!)).toBe('terminated');

    // The workers of shards 1 and 2 die; one manager sweeps every shard and gives their tasks back.
    manager = startJtm(['manager'], env);
    // Every shard swept by the one manager: seen in-process, then by the command.
    await waitManager(env);
    expect((await runJtm(['check-manager'], env)).code).toBe(0);
    await Promise.all([workers[1]!.stop('SIGKILL'), workers[2]!.stop('SIGKILL')]);
    for (const id of running.slice(1)) {
      await waitStatusShown(env, id, 'pending');
    }

    // One submit over pools of every shard: ids come back in the order of the tasks.
    const ctx = await openTestContext(env);
    try {
      const jtm = await connect({ env });
      try {
        const mixed = await jtm.submit(pools.map(p => ({ command: 'true', pool: { name: p! } })));
        expect(mixed.map(id => id % 3)).toEqual([0, 1, 2]);
        // No counter raised by the manager's sweeps of a healthy cluster: it compared the run ids of whichever
        // masters answered INFO and took each difference for a failover, +1,000,000 per shard per sweep
        // (adversary 11 L1).
        expect(Math.max(...mixed)).toBeLessThan(1000);
        expect(manager!.output()).not.toMatch(/restarted or failed over/);
      } finally {
        await jtm.close();
      }
      expect(await ctx.redis.get(new Keys(prefix).shardCount)).toBe('3');
    } finally {
      await closeContext(ctx);
    }

    // Another shard count on the same site is refused with one line, exit 255 (never isalive's "no").
    for (const args of [
      ['status', '-tid', String(ids[0])],
      ['isalive', '-tid', String(ids[0])],
    ]) {
      const wrong = await runJtm(args, { ...env, JTM_SHARDS: '1' });
      expect(wrong.code).toBe(255);
      expect(wrong.stderr).toMatch(/JTM_SHARDS=1 but this site .* has 3 shards/);
    }
    expect(manager.output()).not.toMatch(/"level":(50|60)/);
  });
});

describe('Redis Cluster with JTM_SHARDS=3: one master stopped, then killed', () => {
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  afterAll(async () => {
    for (const s of cluster?.servers ?? []) s.child.kill('SIGCONT');
    await cluster?.stop();
  });

  it('answers unknown / 255 for the tasks of its shard, never "dead" nor a hang, and answers for the others (adversary 11 L2, L4)', async () => {
    cluster = await startCluster();
    const env = testEnv({
      REDIS_URL: cluster.url,
      JTM_SHARDS: '3',
      JTM_PREFIX: `{d-${Date.now() % 100000}}`,
      JTM_ISALIVE_RETRY: '1s',
      JTM_KILL_RETRY: '1s',
      // A command to the stopped master fails after 10 × this (30 s by default).
      JTM_CONNECT_TIMEOUT: '1s',
    });
    const ports = cluster.servers.map(s => s.port);
    const pools = [0, 1, 2].map(k => {
      for (let i = 0; ; i++) if (shardOfPool(`dn${i}`, 3) === k) return `dn${i}`;
    });
    const ids: number[] = [];
    for (const pool of pools) {
      const r = await runJtm(['submit', '-cmd', 'sleep 60', '-p', pool!], env);
      expect(r.code, r.stderr).toBe(0);
      ids.push(taskIds(r.stdout)[0]!);
    }
    const prefix = env['JTM_PREFIX']!;
    const holders = ids.map((id, k) => holder(ports, keysFor(prefix, k, 3).task(id)));
    // The site's own keys (its shard count) are on one master: stopping that one stops every command (said in
    // docs/scaling.md). The victim is another; the healthy shard, the third.
    const siteMaster = holder(ports, new Keys(prefix).shardCount);
    const victim = holders.findIndex(p => p !== siteMaster);
    const healthy = holders.findIndex((p, k) => p !== siteMaster && k !== victim);
    const server = cluster.servers.find(s => s.port === holders[victim])!;
    const answers = async () => {
      const alive = await runJtm(['isalive', '-tid', String(ids[victim])], env);
      const status = await runJtm(['status', '-tid', String(ids[victim])], env);
      const kill = await runJtm(['kill', '-tid', String(ids[victim])], env);
      // A client's connection may first ask the stopped master for the slot map (1 s lost): under a full run's
      // load that used up this test's short connection budget (1 s) three times running, an honest 255 (a full
      // run of s15). The healthy shard's answer is asked with a budget of 5 s, up to 3 times.
      const patient = { ...env, JTM_CONNECT_TIMEOUT: '5s' };
      let other = await runJtm(['status', '-tid', String(ids[healthy])], patient);
      for (let i = 0; i < 2 && other.code === 255; i++)
        other = await runJtm(['status', '-tid', String(ids[healthy])], patient);
      return [
        [alive.code, alive.stdout.trim()],
        [status.code, /cannot reach Redis/.test(status.stderr)],
        // A kill sent to the stopped master may apply when it resumes, and says so (adversary 26 F4).
        [kill.code, /cannot reach Redis|it may have been applied/.test(kill.stderr)],
        [other.code, other.stdout.trim()],
      ];
    };
    const expected = [
      [0, 'unknown'],
      [255, true],
      [255, true],
      [0, 'pending'],
    ];
    server.child.kill('SIGSTOP');
    expect(await answers()).toEqual(expected);
    server.child.kill('SIGCONT');
    await server.stop();
    expect(await answers()).toEqual(expected);
    const pools2 = await runJtm(['pools'], env);
    expect([pools2.code, pools2.stderr]).toEqual([
      255,
      expect.stringMatching(/^jtm pools: cannot reach Redis/),
    ]);
  });
});

describe('JTM_SHARDS on a site that already has tasks', () => {
  it('refuses another count, also on a site from before JTM_SHARDS (an id counter, no stored count)', async () => {
    const env = testEnv();
    const r = await runJtm(['submit', '-cmd', 'true', '-p', 'p'], env);
    expect(r.code, r.stderr).toBe(0);
    const [id] = taskIds(r.stdout);
    const base = new Keys(env['JTM_PREFIX']!);
    const ctx = await openTestContext(env);
    try {
      expect(await ctx.redis.get(base.shardCount)).toBe('1');
      for (const unrecorded of [false, true]) {
        if (unrecorded) await ctx.redis.del(base.shardCount);
        const wrong = await runJtm(['status', '-tid', String(id)], { ...env, JTM_SHARDS: '3' });
        expect(wrong.code).toBe(255);
        expect(wrong.stderr).toMatch(/JTM_SHARDS=3 but this site .* has 1 shard:/);
      }
    } finally {
      await closeContext(ctx);
    }
    expect((await runJtm(['status', '-tid', String(id)], env)).stdout.trim()).toBe('pending');
  });
});
