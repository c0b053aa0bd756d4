import { describe, expect, it } from 'vitest';

import { normaliseArgv } from '../../src/cli/argv.js';
import { loadConfig } from '../../src/config.js';
import { formatHms, parseDuration } from '../../src/durations.js';
import { InvalidInputError } from '../../src/errors.js';
import { maskUrl, parseRedisUrl } from '../../src/redis/connection.js';
import { Keys } from '../../src/redis/keys.js';
import { isActive, statusName, TaskStatus } from '../../src/tasks/status.js';
import { normaliseMemory, workflowPoolName } from '../../src/pool-spec.js';
import { parseTaskFile } from '../../src/tasks/task-file.js';
import { buildTask } from '../../src/tasks/task-spec.js';
import { expandVars } from '../../src/worker/output-files.js';
import { parseStat, type ProcInfo } from '../../src/worker/process-tree.js';
import {
  buildSample,
  csvLine,
  RESOURCE_FIELDS,
  type WorkerIdentity,
} from '../../src/worker/resource-sample.js';

describe('durations', () => {
  it('reads hh:mm:ss, d-hh:mm:ss, ms strings and bare seconds', () => {
    expect(parseDuration('00:30:00')).toBe(1_800_000);
    expect(parseDuration('100:00:00')).toBe(360_000_000);
    expect(parseDuration('1-02:00:00')).toBe(93_600_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('5')).toBe(5000);
    expect(formatHms(3_661_000)).toBe('01:01:01');
  });
  it('rejects what the original let through', () => {
    for (const bad of ['1:2', '00:60:00', '00:00:60', '1:2:3:4', 'soon', '', '-5s', '00:10:00x']) {
      expect(() => parseDuration(bad), bad).toThrow();
    }
  });
});

describe('status codes', () => {
  it('are exactly the original ones', () => {
    expect(TaskStatus).toEqual({
      ready: 0,
      queued: 1,
      pending: 2,
      running: 3,
      success: 4,
      outputerror: -1,
      failed: -2,
      outofresource: -3,
      terminated: -4,
      invalidtask: -5,
      timeout: -6,
      lostconnection: -7,
    });
    expect(statusName(99)).toBe('invalidtask');
    expect([0, 1, 2, 3].every(isActive)).toBe(true);
    expect([4, -1, -2, -3, -4, -5, -6, -7].some(isActive)).toBe(false);
  });
});

describe('argv translation', () => {
  it('maps the original flags, global flags and legacy binaries', () => {
    expect(normaliseArgv('jtm', ['submit', '-cmd', '-n x', '-p', 'a', '-nwpn', '2', '-jid', 'j'])).toEqual([
      'submit',
      '--command=-n x',
      '-p',
      'a',
      '--num_worker_per_node=2',
      '--cromwell_job_id=j',
    ]);
    expect(normaliseArgv('jtm', ['--config=/f', '--debug', 'isalive', '-tid', '5'])).toEqual([
      'isalive',
      '--task_id=5',
      '--config=/f',
      '--debug',
    ]);
    expect(normaliseArgv('jtm', ['--config', '/f', 'status', '-tid=7'])).toEqual([
      'status',
      '--task_id=7',
      '--config',
      '/f',
    ]);
    expect(normaliseArgv('jtm-isalive', ['5'])).toEqual(['isalive', '5']);
    expect(normaliseArgv('jtm-submit', ['-cr', 'ls', '-p', 't'])).toEqual([
      'submit',
      '--command=ls',
      '-p',
      't',
    ]);
    expect(normaliseArgv('jtm-worker', ['-tp', 'small', '-dr'])).toEqual([
      'worker',
      '--pool_name=small',
      '--dry_run',
    ]);
    expect(normaliseArgv('jtm', ['submit', '--', '-tid'])).toEqual(['submit', '--', '-tid']);
  });
});

describe('task validation', () => {
  const defaults = { cwd: '/work', maxCommandBytes: 100, pool: 'small' };
  it('builds a task with the pool from -p, the pool fields and the pool time as the default limit', () => {
    const t = buildTask({ command: 'ls', pool: { cpu: 2, mem: '10GB', time: '00:10:00' } }, defaults);
    expect(t).toMatchObject({ command: 'ls', pool: 'small', cwd: '/work', timeoutMs: 600_000 });
    expect(t.poolSpec).toEqual({ name: 'small', cpu: 2, mem: '10G', time: '00:10:00' });
  });
  it('names per-workflow pools after the Cromwell workflow id', () => {
    const cmd = '/bin/bash /data/cromwell-executions/wf/5e1f-77/call-a/execution/script';
    expect(workflowPoolName('small', cmd, undefined)).toBe('small_5e1f-77');
    expect(workflowPoolName('small', 'ls', 'cromwell_abcd1234_task')).toBe('small_abcd1234');
    expect(() => workflowPoolName('small', 'ls', undefined)).toThrow(InvalidInputError);
    const t = buildTask(
      { command: cmd },
      { ...defaults, poolFields: { shared: 0 }, cromwellJobId: 'cromwell_x_y' },
    );
    expect(t.pool).toBe('small_5e1f-77');
  });
  it('rounds memory in GB as the original, and keeps Slurm sizes', () => {
    expect(normaliseMemory(4.5)).toBe('5G');
    expect(normaliseMemory('0.2')).toBe('1G');
    expect(normaliseMemory('500M')).toBe('500M');
    expect(normaliseMemory('10gb')).toBe('10G');
    expect(() => normaliseMemory('-1')).toThrow();
  });
  it('reads one object, an array, or JSON lines', () => {
    expect(parseTaskFile('{"command":"a"}', 'f')).toHaveLength(1);
    expect(parseTaskFile('[{"command":"a"},{"command":"b"}]', 'f')).toHaveLength(2);
    expect(parseTaskFile('{"command":"a"}\n{"command":"b"}\n', 'f')).toHaveLength(2);
    expect(() => parseTaskFile('{"command":', 'f')).toThrow(/malformed JSON/);
    expect(() => parseTaskFile('[]', 'f')).toThrow(/empty/);
  });
});

describe('Redis URLs and keys', () => {
  const config = loadConfig({});
  it('masks passwords', () => {
    expect(maskUrl('redis://user:pw@h:1')).toBe('redis://user:***@h:1');
    expect(maskUrl('rediss://:pw@h:1/0')).toBe('rediss://***@h:1/0');
    expect(maskUrl('redis://h:1')).toBe('redis://h:1');
  });
  it('parses ACL users, TLS, cluster and sentinel URLs', () => {
    expect(parseRedisUrl('redis://jtm:p%40ss@10.0.0.1:6380/2', config)).toMatchObject({
      kind: 'single',
      nodes: [{ host: '10.0.0.1', port: 6380 }],
      options: { username: 'jtm', password: 'p@ss', db: 2 },
    });
    expect(parseRedisUrl('rediss://h:6380', config).options.tls).toEqual({});
    expect(parseRedisUrl('redis+cluster://a:1,b:2', config)).toMatchObject({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 1 },
        { host: 'b', port: 2 },
      ],
    });
    expect(parseRedisUrl('redis+sentinel://a:26379/main', config)).toMatchObject({
      kind: 'sentinel',
      sentinelName: 'main',
    });
  });
  it('puts every key and queue under one hash tag', () => {
    const k = new Keys('{jtm}');
    for (const key of [
      k.task(5),
      k.taskEvents(5),
      k.worker('w'),
      k.workerAlive('w'),
      k.pool('p'),
      k.queuePrefix,
      k.managerAlive,
    ]) {
      expect(key.startsWith('{jtm}:')).toBe(true);
    }
  });
  it('rejects a prefix that is not key-safe', () => {
    expect(() => loadConfig({ JTM_PREFIX: 'a b' })).toThrow(InvalidInputError);
    expect(() => loadConfig({ JTM_HEARTBEAT_INTERVAL: 'often' })).toThrow(/JTM_HEARTBEAT_INTERVAL/);
  });
});

describe('resource samples', () => {
  const me: WorkerIdentity = {
    workerId: 'w1',
    hostName: 'h',
    ipAddress: '10.0.0.1',
    poolName: 'p',
    rootPid: 10,
    slurmJobId: 0,
    workerType: 0,
    numCores: 8,
    memPerNode: '',
    memPerCore: '',
    jobTime: null,
    workersOnNode: 1,
    endOfLife: 1_000_000 + 600_000,
  };
  const proc = (pid: number, ticks: number, rssMb: number): ProcInfo => ({
    pid,
    state: 'S',
    ppid: 1,
    pgid: pid,
    sid: pid,
    start: 1,
    cpuTicks: ticks,
    rssBytes: rssMb * 1048576,
    vsizeBytes: 2 * rssMb * 1048576,
  });
  it('sums memory over the tree afresh each time and turns CPU ticks into load over the interval', () => {
    const task = { id: 7, pid: 11, startedAt: 1_000_000, numTasks: 1 };
    const a = buildSample(
      [proc(11, 100, 10), proc(12, 100, 20)],
      undefined,
      task,
      me,
      { usedPercent: 12.34 },
      1_002_000,
    );
    expect(a.sample).toMatchObject({
      cpu_load: 100,
      rmem_usage: 30,
      vmem_usage: 60,
      run_time: 2,
      life_left: 9,
      perc_mem_used: 12.3,
    });
    const b = buildSample([proc(11, 150, 5)], a.state, task, me, { usedPercent: 1 }, 1_003_000);
    expect(b.sample).toMatchObject({ rmem_usage: 5, run_time: 3 });
    expect(b.state.peakRssBytes).toBe(30 * 1048576);
    expect(Object.keys(b.sample)).toEqual([...RESOURCE_FIELDS]);
    expect(csvLine(b.sample).split(',')).toHaveLength(RESOURCE_FIELDS.length);
  });
  it('parses /proc/<pid>/stat even with spaces and parentheses in the command name', () => {
    const stat =
      '1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 555 8192000 300 18446744073709551615';
    expect(parseStat(1234, stat)).toMatchObject({
      pid: 1234,
      state: 'S',
      ppid: 1,
      pgid: 1234,
      cpuTicks: 13,
      start: 555,
      vsizeBytes: 8192000,
      rssBytes: 300 * 4096,
    });
  });
  it('expands $VAR and ${VAR} in output file names', () => {
    expect(expandVars('$HOME/a,${X}/b,$NOPE/c', { HOME: '/h', X: 'x' })).toBe('/h/a,x/b,/c');
  });
});
