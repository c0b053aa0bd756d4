import { describe, expect, expectTypeOf, it } from 'vitest';

import { InvalidInputError } from '../../../src/errors.js';
import { normaliseMemory, workflowPoolName } from '../../../src/pool-spec.js';
import { parseTaskFile, taskFileEntries } from '../../../src/tasks/task-file.js';
import type { TaskInput as ApiTaskInput } from '../../../src/index.js';
import type { TASK_FIELDS } from '../../../src/tasks/task-spec.js';
import { buildTask } from '../../../src/tasks/task-spec.js';

describe('task validation', () => {
  it('the typed API names exactly the fields the validator accepts (checked by `npm run typecheck`)', () => {
    expectTypeOf<keyof ApiTaskInput>().toEqualTypeOf<(typeof TASK_FIELDS)[number]>();
  });
  const defaults = { cwd: '/work', maxCommandBytes: 100, pool: 'small' };
  it('builds a task with the pool from -p, the pool fields and the pool time as the default limit', () => {
    const t = buildTask({ command: 'ls', pool: { cpu: 2, mem: '10GB', time: '00:10:00' } }, defaults);
    expect(t).toMatchObject({ command: 'ls', pool: 'small', cwd: '/work', timeoutMs: 600_000 });
    expect(t.poolSpec).toEqual({ name: 'small', cpu: 2, mem: '10G', time: '00:10:00' });
  });
  it('refuses a path no system call takes (over PATH_MAX, a name over NAME_MAX), naming its length, not echoing it (adversary 40 L2: a 1 MB stdout path taken)', () => {
    const huge = `/tmp/${'b'.repeat(1 << 20)}`;
    for (const field of ['stdout', 'stderr', 'rc_file', 'output_dir']) {
      let message = '';
      try {
        buildTask({ command: 'ls', [field]: huge }, defaults);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, field).toMatch(/is 1,048,581 bytes long: paths are at most 4,095 bytes \(PATH_MAX\)$/);
      expect(message.length, field).toBeLessThan(200);
    }
    expect(() => buildTask({ command: 'ls', stdout: `/tmp/${'n'.repeat(256)}/out` }, defaults)).toThrow(
      /has a name of 256 bytes: names are at most 255 bytes \(NAME_MAX\)$/,
    );
    // The longest that may work, and one the worker expands, are taken.
    const deep = `/${Array.from({ length: 16 }, () => 'd'.repeat(254)).join('/')}`.slice(0, 4095);
    expect(buildTask({ command: 'ls', stdout: deep }, defaults).stdout).toBe(deep);
    expect(buildTask({ command: 'ls', stdout: `$HOME/${'n'.repeat(300)}` }, defaults).stdout).toBeDefined();
  });
  it('names per-workflow pools after the Cromwell workflow id', () => {
    const cmd = '/bin/bash /data/cromwell-executions/wf/5e1f-77/call-a/execution/script';
    expect(workflowPoolName('small', cmd, undefined)).toBe('small_5e1f-77');
    expect(workflowPoolName('small', 'ls', 'cromwell_abcd1234_task')).toBe('small_abcd1234');
    expect(() => workflowPoolName('small', 'ls', undefined)).toThrow(InvalidInputError);
    const t = buildTask(
      { command: cmd },
      {
        ...defaults,
        poolFields: { shared: 0, cluster: 'perlmutter', time: '01:00:00' },
        cromwellJobId: 'cromwell_x_y',
      },
    );
    expect(t.pool).toBe('small_5e1f-77');
  });
  it('refuses a workflow id of ".", ".." or one starting with "-" (adversary 25 F8: pools x_.. and x_-rf)', () => {
    for (const [cmd, id] of [
      ['/bin/bash /d/cromwell-executions/wf/../call-a/execution/script', '..'],
      ['/bin/bash /d/cromwell-executions/wf/./call-a/execution/script', '.'],
      ['/bin/bash /d/cromwell-executions/wf/-rf/call-a/execution/script', '-rf'],
    ]) {
      expect(() => workflowPoolName('x', cmd as string, undefined), cmd).toThrow(
        new RegExp(
          `^shared=0: "${(id as string).replace(/\./g, '\\.')}" from the command's cromwell-executions/wf/\\S+ is not a workflow id`,
        ),
      );
    }
    for (const jobId of ['cromwell_-rf_call', 'cromwell_.._call', 'cromwell_._call']) {
      expect(() => workflowPoolName('x', 'ls', jobId), jobId).toThrow(
        /^shared=0: ".*" from job_id .* is not a workflow id/,
      );
    }
    // Every name valid before stays: dots and dashes inside an id, an id starting with a dot or a digit.
    for (const [id, pool] of [
      ['5e1f-77', 'x_5e1f-77'],
      ['a.b', 'x_a.b'],
      ['...', 'x_...'],
      ['.hidden', 'x_.hidden'],
      ['0d3-', 'x_0d3-'],
    ]) {
      expect(workflowPoolName('x', `/d/cromwell-executions/wf/${id}/call-a/script`, undefined)).toBe(pool);
    }
    expect(workflowPoolName('x', 'ls', 'cromwell_a-b_call')).toBe('x_a-b');
  });
  it('runs shared = 0 on the pool named where no one provisions a per-workflow one (adversary 9 J3)', () => {
    const cmd = '/bin/bash /data/cromwell-executions/wf/5e1f-77/call-a/execution/script';
    for (const poolFields of [
      { shared: 0, cluster: 'local', time: '01:00:00' },
      { shared: 0, time: '01:00:00' },
      { shared: 0, cluster: 'perlmutter' },
    ]) {
      const t = buildTask({ command: cmd }, { ...defaults, poolFields, cromwellJobId: 'cromwell_x_y' });
      expect(t.pool, JSON.stringify(poolFields)).toBe('small');
    }
  });
  it('rounds memory in GB as the original, and keeps Slurm sizes', () => {
    expect(normaliseMemory(4.5)).toBe('4608M');
    // Never below the request (adversary 7 H6: 1.4 GB was a 1G limit, the call killed under its request).
    expect(normaliseMemory('1.4')).toBe('1434M');
    expect(normaliseMemory(3)).toBe('3G');
    expect(normaliseMemory('0.2')).toBe('205M');
    expect(normaliseMemory('500M')).toBe('500M');
    expect(normaliseMemory('10gb')).toBe('10G');
    expect(() => normaliseMemory('-1')).toThrow();
    // adversary 25 F2: a size with a unit had no upper bound (stored as 1.024e+23 MB)
    expect(() => normaliseMemory('100000000000000000000G')).toThrow(/^memory must be at most 1000000000 GB$/);
    expect(() => normaliseMemory('1000000001G')).toThrow(/at most 1000000000 GB/);
    expect(normaliseMemory('1000000000G')).toBe('1000000000G');
  });
  it('names both bounds when it refuses a count out of range (adversary 9 J5: "must be ≥ 1, got 10000000")', () => {
    for (const v of [10_000_000, 2147483648, 0]) {
      expect(() => buildTask({ command: 'ls', pool: { cpu: v } }, defaults), String(v)).toThrow(
        /^cpu must be an integer from 1 to 1000000, got /,
      );
    }
    expect(buildTask({ command: 'ls', pool: { cpu: 1_000_000 } }, defaults).poolSpec?.cpu).toBe(1_000_000);
  });
  it('refuses more than 256 workers per node: the batch script starts each as a process on the node (adversary 25 F3)', () => {
    for (const v of [257, 100_000, 1_000_000]) {
      expect(() => buildTask({ command: 'ls', pool: { nwpn: v } }, defaults), String(v)).toThrow(
        /^nwpn must be an integer from 1 to 256 \(workers started on each node\), got /,
      );
    }
    expect(buildTask({ command: 'ls', pool: { nwpn: 256 } }, defaults).poolSpec?.nwpn).toBe(256);
  });
  it('takes counts as JSON numbers only: "cpu": "4" and "shared": "0" were coerced (adversary 25 F8)', () => {
    for (const field of ['cpu', 'node', 'nwpn', 'shared']) {
      const v = field === 'shared' ? '0' : '4';
      expect(() => buildTask({ command: 'ls', pool: { [field]: v } }, defaults), field).toThrow(
        new RegExp(`^${field} must be a number, not the string "${v}": write ${v}, without quotes$`),
      );
    }
    expect(() => buildTask({ command: 'ls', pool: { cpu: ' 4 ' } }, defaults)).toThrow(
      /not the string " 4 "/,
    );
    expect(() => buildTask({ command: 'ls', pool: { cpu: 'two' } }, defaults)).toThrow(
      /^cpu must be a number, not the string "two"$/,
    );
    // The numbers, and "not given" ('' and null, as for every field), are as before.
    expect(
      buildTask({ command: 'ls', pool: { cpu: 4, node: 2, nwpn: 2, shared: 1 } }, defaults).poolSpec,
    ).toEqual({ name: 'small', cpu: 4, node: 2, nwpn: 2, shared: 1 });
    expect(buildTask({ command: 'ls', pool: { cpu: '', node: null } }, defaults).poolSpec).toEqual({
      name: 'small',
    });
    // Memory keeps both documented forms: a number of GB, or a string in -m syntax (digits alone are GB).
    for (const [mem, want] of [
      [10, '10G'],
      ['10', '10G'],
      ['10G', '10G'],
      ['500M', '500M'],
      [4.5, '4608M'],
    ] as const) {
      expect(buildTask({ command: 'ls', pool: { mem } }, defaults).poolSpec?.mem, String(mem)).toBe(want);
      expect(buildTask({ command: 'ls', mem_limit: mem }, defaults).memLimit, String(mem)).toBe(want);
    }
  });
  it('takes a cluster in any case as the lower-case profile name, and stores that (adversary 25 F8)', () => {
    for (const cluster of ['TEST', 'Test', 'test']) {
      expect(buildTask({ command: 'ls', pool: { cluster } }, defaults).poolSpec?.cluster, cluster).toBe(
        'test',
      );
    }
  });
  it('names the line (JSON lines, blank lines counted) or the task (an array) of a task file', () => {
    const lines = taskFileEntries('\n{"command":"a"}\n\n{"command":"b"}\n', 'f.jsonl');
    expect(lines.inputs).toHaveLength(2);
    expect([0, 1].map(i => lines.where?.(i))).toEqual(['f.jsonl:2', 'f.jsonl:4']);
    expect(() => taskFileEntries('{"command":"a"}\n\n{"command":\n', 'f.jsonl')).toThrow(
      /^f\.jsonl:3: malformed JSON/,
    );
    expect(taskFileEntries('[{"command":"a"},{"command":"b"}]', 'f.json').where?.(1)).toBe('f.json: task 2');
    expect(taskFileEntries('{"command":"a"}', 'f.json').where).toBeUndefined();
  });
  it('refuses an empty memory value and any below 1 MB, with or without a unit', () => {
    for (const v of ['0G', '0M', '0.0T', '1K', '1023K', '0.5M', '0.0001', 0.0001, '0.0009']) {
      expect(() => normaliseMemory(v, 'mem_limit'), String(v)).toThrow(/^mem_limit .* is below 1 MB/);
    }
    expect(() => normaliseMemory('0', 'mem_limit')).toThrow(/must be positive/);
    expect(() => normaliseMemory('', '--mem-limit')).toThrow(/^--mem-limit is empty/);
    expect(() => normaliseMemory('  ', '--mem-limit')).toThrow(/^--mem-limit is empty/);
    expect(normaliseMemory('1024K')).toBe('1024K');
    expect(normaliseMemory('1M')).toBe('1M');
    expect(normaliseMemory('0.001')).toBe('2M');
    expect(normaliseMemory(undefined)).toBeUndefined();
    expect(() =>
      buildTask({ command: 'ls', mem_limit: '0G' }, { cwd: '/w', maxCommandBytes: 100, pool: 'p' }),
    ).toThrow(/mem_limit "0G" is below 1 MB/);
  });
  it('reads one object, an array, or JSON lines', () => {
    expect(parseTaskFile('{"command":"a"}', 'f')).toHaveLength(1);
    expect(parseTaskFile('[{"command":"a"},{"command":"b"}]', 'f')).toHaveLength(2);
    expect(parseTaskFile('{"command":"a"}\n{"command":"b"}\n', 'f')).toHaveLength(2);
    expect(() => parseTaskFile('{"command":', 'f')).toThrow(/malformed JSON/);
    expect(() => parseTaskFile('[]', 'f')).toThrow(/empty/);
  });
});
