import { afterAll, describe, expect, it } from 'vitest';

import { runJtm, taskIds } from '../helpers/cli.js';
import { startDashboard } from '../helpers/dashboard.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { redisCli, startPlainRedis, type Server } from './servers.js';

/*
 * A REDIS_URL that names a replica (a failover turned the node into one; it re-syncs from the new master) answered
 * reads from whatever it held: isalive said `no` (exit 1, "dead" to Cromwell) for a live task, status invalidtask,
 * kill "no task", pools "no pools" (adversary 34 H2). A negative answer is now asked of the server's role first:
 * a replica is Redis unavailable (isalive `unknown`, exit 0; the others 255), named so.
 */
describe('a REDIS_URL naming a replica', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
  });

  it('never makes isalive say no for a live task; a master still says no for a missing id', async () => {
    // The master waits a minute before it sends a replica its dataset: the replica stays mid-sync (empty).
    const master = await startPlainRedis([
      '--dir',
      tempDir('jtm-replica-'),
      '--repl-diskless-sync',
      'yes',
      '--repl-diskless-sync-delay',
      '60',
    ]);
    servers.push(master);
    const replica = await startPlainRedis(['--dir', tempDir('jtm-replica-')]);
    servers.push(replica);
    const fast = { JTM_CONNECT_TIMEOUT: '1s', JTM_ISALIVE_RETRY: '1s', JTM_KILL_RETRY: '1s' };
    const onMaster = testEnv({ ...fast, REDIS_URL: `redis://127.0.0.1:${master.port}` });
    const onReplica = { ...onMaster, REDIS_URL: `redis://127.0.0.1:${replica.port}` };
    const [id] = taskIds(
      (await runJtm(['submit', '-cmd', 'sleep 1', '-p', 'replica-reads'], onMaster)).stdout,
    );
    expect(id).toBeDefined();
    const missing = String(id! + 1000);

    redisCli(['-p', String(replica.port), 'REPLICAOF', '127.0.0.1', String(master.port)]);
    const role = (): string => redisCli(['-p', String(replica.port), 'ROLE']);
    await waitFor(() => /slave/.test(role()), 'the replica role', 5000);

    // Mid-sync: the replica holds nothing of the master's yet.
    const alive = await runJtm(['isalive', '-tid', String(id)], onReplica);
    expect(alive.stdout.trim(), alive.stderr).toBe('unknown');
    expect(alive.code).toBe(0);
    expect(alive.stderr).toMatch(/is a replica of 127\.0\.0\.1:\d+, link \w+: point REDIS_URL at the master/);
    const status = await runJtm(['status', '-tid', String(id)], onReplica);
    expect(status.code, status.stderr).toBe(255);
    expect(status.stdout).toBe('');
    expect(status.stderr).toMatch(
      /^jtm status: Redis at \S+ is a replica of 127\.0\.0\.1:\d+, link \w+: point REDIS_URL at the master\n$/,
    );
    const statusJson = await runJtm(['status', '-tid', String(id), '--json'], onReplica);
    expect(statusJson.code, statusJson.stderr).toBe(255);
    expect(statusJson.stdout).not.toMatch(/invalidtask/);
    const kill = await runJtm(['kill', '-tid', String(id)], onReplica);
    expect(kill.code, kill.stderr).toBe(255);
    expect(kill.stderr).toMatch(/^jtm kill: Redis at \S+ is a replica .*point REDIS_URL at the master\n$/);
    const pools = await runJtm(['pools'], onReplica);
    expect(pools.code, pools.stderr).toBe(255);
    expect(pools.stdout).not.toMatch(/no pools/);
    expect(pools.stderr).toMatch(/^jtm pools: Redis at \S+ is a replica .*point REDIS_URL at the master\n$/);
    // The other answers of "not there": logs, resource-log, remove-pool.
    for (const args of [
      ['logs', '-tid', String(id)],
      ['resource-log', '-tid', String(id)],
      ['remove-pool', '-p', 'replica-reads'],
      // "No worker", "no manager", and a report of whatever part of the records the replica held yet.
      ['check-worker', '-p', 'replica-reads'],
      ['check-manager'],
      ['report', '--json'],
    ]) {
      const r = await runJtm(args, onReplica);
      expect.soft(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(255);
      expect
        .soft(r.stderr, args.join(' '))
        .toMatch(
          new RegExp(`^jtm ${args[0]}: Redis at \\S+ is a replica .*point REDIS_URL at the master\n$`),
        );
    }
    const gone = await runJtm(['isalive', '-tid', missing], onReplica);
    expect(gone.stdout.trim(), gone.stderr).toBe('unknown');
    // The dashboard's pages of a task and of a pool: 503 saying why, not "No task with id N" (404).
    const dash = await startDashboard(onReplica);
    try {
      for (const path of [`task?id=${id}`, `task/live?id=${id}`, 'pool?name=replica-reads']) {
        const res = await fetch(new URL(path, dash.url));
        const body = await res.text();
        expect.soft([res.status, /is a replica of/.test(body)], path).toEqual([503, true]);
      }
    } finally {
      await dash.proc.stop();
    }

    // Fully synced: the live task is alive there too; a missing id is still not the replica's to deny.
    redisCli(['-p', String(master.port), 'CONFIG', 'SET', 'repl-diskless-sync-delay', '0']);
    await waitFor(() => /\bconnected\b/.test(role()), 'the sync', 20_000);
    const synced = await runJtm(['isalive', '-tid', String(id)], onReplica);
    expect(synced.stdout.trim(), synced.stderr).toBe('yes');
    // A replica in step with its master may be read by the report.
    const report = await runJtm(['report', '--json'], onReplica);
    expect(report.code, report.stderr).toBe(0);
    expect(JSON.parse(report.stdout)).toMatchObject({ tasks: 1 });
    const syncedMissing = await runJtm(['isalive', '-tid', missing], onReplica);
    expect(syncedMissing.stdout.trim(), syncedMissing.stderr).toBe('unknown');

    // A master's answers stand: a missing id is dead, invalidtask.
    const no = await runJtm(['isalive', '-tid', missing], onMaster);
    expect(no.stdout.trim(), no.stderr).toBe('no');
    expect(no.code).toBe(1);
    const invalid = await runJtm(['status', '-tid', missing], onMaster);
    expect(invalid.stdout.trim(), invalid.stderr).toBe('invalidtask');
    expect(invalid.code).toBe(1);

    // An ACL user that may not ask ROLE: its answers are as before (taken as a master's).
    redisCli([
      '-p',
      String(master.port),
      'ACL',
      'SETUSER',
      'norole',
      'on',
      '>pw',
      '~*',
      '&*',
      '+@all',
      '-role',
    ]);
    const acl = { ...onMaster, REDIS_URL: `redis://norole:pw@127.0.0.1:${master.port}` };
    const aclNo = await runJtm(['isalive', '-tid', missing], acl);
    expect(aclNo.stdout.trim(), aclNo.stderr).toBe('no');
    expect(aclNo.code).toBe(1);
    const aclYes = await runJtm(['isalive', '-tid', String(id)], acl);
    expect(aclYes.stdout.trim(), aclYes.stderr).toBe('yes');
  }, 90_000);
});
