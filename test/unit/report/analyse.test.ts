import { describe, expect, it } from 'vitest';

import {
  analyse,
  groupOf,
  matchesFilter,
  reasonGroup,
  memoryMb,
  rightSize,
  sinceOf,
  spread,
  validateWorkflowFilter,
} from '../../../src/report/analyse.js';
import { parseTaskRecord, type TaskRecord } from '../../../src/store/task-record.js';

function rec(fields: Record<string, string | number>): TaskRecord {
  const hash = Object.fromEntries(
    Object.entries({ command: 'true', pool: 'p', ...fields }).map(([k, v]) => [k, String(v)]),
  );
  return parseTaskRecord(hash) as TaskRecord;
}

describe('report analysis', () => {
  it('groups by Cromwell call name, else by program (and script for shells)', () => {
    expect(groupOf({ cromwell_job_id: 'cromwell_8a3f2c1d_call_variants', command: 'x' })).toEqual({
      name: 'call_variants',
      kind: 'call',
    });
    expect(groupOf({ command: 'bash /a/b/execution/script' })).toEqual({
      name: 'bash script',
      kind: 'command',
    });
    expect(groupOf({ command: '/usr/bin/python3 -c 1' })).toEqual({ name: 'python3', kind: 'command' });
    expect(groupOf({ cromwell_job_id: 'mine', command: 'sleep 1' })).toEqual({
      name: 'sleep',
      kind: 'command',
    });
    // Adversary 8: `for …`, `exec …`, `sh -c …` were groups named for, exec, sh.
    const names = [
      'for i in 1 2; do echo $i; done',
      'exec samtools sort x.bam',
      "sh -c 'bwa mem ref.fa r.fq'",
      'A=1 B=2 /opt/bin/gatk HaplotypeCaller',
      'timeout 600 nice -n 5 env X=1 python3 run.py',
      'while true; do sleep 1; done',
      'bash -c "bash /x/execution/script"',
    ].map(command => groupOf({ command }).name);
    expect(names).toEqual([
      '(shell for)',
      'samtools',
      'bwa',
      'gatk',
      'python3',
      '(shell while)',
      'bash script',
    ]);
  });

  it('right-sizes memory: peak + 20 % rounded up to a GB', () => {
    expect(memoryMb('16G')).toBe(16384);
    expect(memoryMb('500M')).toBe(500);
    expect(rightSize(3174, 16384)).toBe('peak 3.1 GB of 16 GB: request 4 GB');
    expect(rightSize(12000, 16384)).toBe('peak 11.7 GB of 16 GB: fits');
    // Under 20 % headroom inside the request (adversary 20 F4: 862 MB of 1 GB was "fits").
    expect(rightSize(15000, 16384)).toBe('peak 14.6 GB of 16 GB, under 20 % headroom: request 18 GB');
    expect(rightSize(862, 1024)).toBe('peak 862 MB of 1 GB, under 20 % headroom: request 2 GB');
    // Stopped at their limit: the peak is the limit, not the need (adversary 20 F5: "peak 1.5 GB of 2 GB: fits").
    expect(rightSize(1536, 2048, 1)).toBe(
      '1 task ran out of memory (largest peak 1.5 GB): request more, e.g. 4 GB',
    );
    expect(rightSize(1024, 1024, 3)).toBe(
      '3 tasks ran out of memory (largest peak 1 GB): request more, e.g. 2 GB',
    );
    expect(rightSize(1024, null, 1)).toBe(
      '1 task ran out of memory (largest peak 1 GB): request more, e.g. 2 GB',
    );
    // Headroom is the peak's, not the rounded suggestion's: a request that is not a whole GB (6G over 4 workers).
    expect(rightSize(900, 1536)).toBe('peak 900 MB of 1.5 GB: fits');
    expect(rightSize(300, 500)).toBe('peak 300 MB of 500 MB: fits');
    expect(rightSize(20000, 16384)).toBe('peak 19.5 GB above the 16 GB request: request 24 GB');
    // A cgroup's charge of a tiny task (adversary 14 F3: "peak 0 MB" beside a chart at 1.1 MB).
    expect(rightSize(0, null)).toBe('peak < 1 MB, no memory request: request 1 GB');
    expect(rightSize(300, null)).toBe('peak 300 MB, no memory request: request 1 GB');
    expect(rightSize(null, 1024)).toBe('no usage recorded');
  });

  // Adversary 21 F8: `--since 99999999d` was taken, and the header said "since -271764-03-24".
  it('--since: the epoch ms it starts at, refused when it reaches before 1970', () => {
    const now = Date.UTC(2025, 0, 2);
    expect(sinceOf('2h', now)).toBe(now - 7_200_000);
    expect(sinceOf('20090d', now)).toBe(now - 20_090 * 86_400_000);
    expect(() => sinceOf('99999999d', now)).toThrow(
      'invalid --since "99999999d": it reaches before 1970-01-01 (the epoch); at most 20090d, or no --since for every task',
    );
    expect(() => sinceOf('20091d', now)).toThrow(/before 1970/);
    expect(() => sinceOf('yesterday', now)).toThrow(/invalid --since "yesterday"/);
    // A span of nothing kept only the tasks not yet ended (adversary 34 L9).
    expect(() => sinceOf('0', now)).toThrow('invalid --since "0": must be longer than 0');
    expect(() => sinceOf('0s', now)).toThrow(/must be longer than 0/);
  });

  it('spread: count, mean, median, p95, max', () => {
    expect(spread([])).toBeNull();
    expect(spread([1, 2, 3, 4, 10])).toEqual({ count: 5, mean: 4, p50: 3, p95: 10, max: 10 });
  });

  it('a mid-run report charts the tasks running longest, and says a running call has no figures yet (adversary 9 J5)', () => {
    const ended = [1, 2, 3, 4, 5, 6, 7].map(id =>
      rec({
        id,
        status: 4,
        started_at: 0,
        ended_at: 10,
        peak_rss_mb: id * 10,
        cpu_time_s: id,
        cromwell_job_id: 'cromwell_8a3f2c1d_done',
      }),
    );
    const running = [20, 21, 22].map(id =>
      rec({ id, status: 3, started_at: 100 - id, cromwell_job_id: 'cromwell_8a3f2c1d_align' }),
    );
    const { data, heavyIds } = analyse([...ended, ...running], {}, 200);
    // Four ended (the heaviest), then the two running since the earliest.
    expect(heavyIds).toEqual([7, 6, 5, 4, 22, 21]);
    expect(data.groups.find(g => g.name === 'align')?.suggestion).toBe(
      'running: usage recorded when a task ends',
    );
    expect(analyse(ended, {}, 200).heavyIds).toEqual([7, 6, 5, 4, 3, 2]);
  });

  it("a running task's peak so far counts in its call's row, and the suggestion says so (adversary 21 F5)", () => {
    const call = { cromwell_job_id: 'cromwell_8a3f2c1d_mid' };
    const ended = rec({ id: 1, status: 4, started_at: 0, ended_at: 10, peak_rss_mb: 13, ...call });
    const running = { ...rec({ id: 2, status: 3, started_at: 50, ...call }), running_peak_mb: 163 };
    const { data, heavyIds } = analyse([ended, running], {}, 200);
    const mid = data.groups.find(g => g.name === 'mid');
    expect(mid?.peak_rss_mb).toBe(163);
    expect(mid?.suggestion).toBe(
      'peak 163 MB, no memory request: request 1 GB (1 task still running: peak so far)',
    );
    expect(heavyIds[0]).toBe(2);
    // A running re-run below its earlier run's recorded peak keeps the larger.
    const rerun = {
      ...rec({ id: 3, status: 3, started_at: 50, peak_rss_mb: 500, ...call }),
      running_peak_mb: 20,
    };
    expect(analyse([rerun], {}, 200).data.groups[0]?.peak_rss_mb).toBe(500);
  });

  it('timeline: overlapping runs of one worker go to different slots, later runs reuse a free slot', () => {
    const base = { status: 4, worker_id: 'w1', queued_at: 0 };
    const { data } = analyse(
      [
        rec({ ...base, id: 1, started_at: 0, ended_at: 10 }),
        rec({ ...base, id: 2, started_at: 5, ended_at: 20 }),
        rec({ ...base, id: 3, started_at: 12, ended_at: 15 }),
        rec({
          ...base,
          id: 4,
          worker_id: 'w2',
          started_at: 1,
          ended_at: 2,
          status: -2,
          reason: 'exit code 9',
        }),
      ],
      {},
      100,
    );
    expect(data.timeline.rows).toEqual(['w1 #1', 'w1 #2', 'w2 #1']);
    expect(data.timeline.bars.map(b => [b.id, b.row])).toEqual([
      [1, 0],
      [2, 1],
      [3, 0],
      [4, 2],
    ]);
    expect(data.failures.by_reason).toEqual([{ reason: 'exit code N', count: 1 }]);
  });

  it('CPU efficiency = CPU time / (wall × CPUs of a worker: -c ÷ workers per node); request = mem / workers per node', () => {
    const spec = JSON.stringify({ name: 'p', cpu: 4, mem: '16G', nwpn: 2 });
    const { data } = analyse(
      [
        rec({
          id: 1,
          status: 4,
          started_at: 0,
          ended_at: 10_000,
          cpu_time_s: 20,
          peak_rss_mb: 1000,
          pool_spec: spec,
        }),
      ],
      {},
    );
    expect(data.groups[0]).toMatchObject({
      // 20 s of CPU in 10 s on a worker's 2 CPUs (of the node's 4, shared by 2 workers): all of them (adversary 9
      // J13: 0.5 before, against the node's 4).
      cpu_efficiency: 1,
      cpus: 2,
      cpus_assumed: false,
      mem_request_mb: 8192,
    });
    expect(data.groups[0]?.suggestion).toBe('peak 1000 MB of 8 GB: request 2 GB');
  });

  it('--workflow: the call directory at any level (sub-workflows), a full id in full, else the job name (adversary 9 J4, J9)', () => {
    const root = 'c5efff15-d24f-4f4a-a1b3-6f4f976dddce';
    const other = 'c5efff15-0000-4000-8000-000000000000';
    const sub = '9d0e1f2a-1111-4222-8333-444455556666';
    const top = rec({
      id: 1,
      status: 4,
      command: `/bin/bash /x/cromwell-executions/wf/${root}/call-top/execution/script`,
      cromwell_job_id: 'cromwell_c5efff15_top',
    });
    // A sub-workflow's call: its job name names the sub-workflow.
    const inner = rec({
      id: 2,
      status: 4,
      command: `/bin/bash /x/cromwell-executions/wf/${root}/call-sub/sub/${sub}/call-x/execution/script`,
      cromwell_job_id: 'cromwell_9d0e1f2a_x',
    });
    const elsewhere = rec({
      id: 3,
      status: 4,
      command: `/bin/bash /x/cromwell-executions/wf/${other}/call-top/execution/script`,
      cromwell_job_id: 'cromwell_c5efff15_top',
    });
    const noPath = rec({ id: 4, status: 4, command: 'sleep 1', cromwell_job_id: 'cromwell_c5efff15_raw' });
    const pick = (w: string): boolean[] =>
      [top, inner, elsewhere, noPath].map(r => matchesFilter(r, { workflow: validateWorkflowFilter(w) }));
    expect(pick(root)).toEqual([true, true, false, true]);
    expect(pick(root.toUpperCase())).toEqual([true, true, false, true]);
    // The first 8 characters: every workflow that starts so (said in --help).
    expect(pick('c5efff15')).toEqual([true, true, true, true]);
    expect(pick(sub)).toEqual([false, true, false, false]);
    for (const bad of ['11111111-xxxx', 'c5eff', 'zzzzzzzz', `${root}x`])
      expect(() => validateWorkflowFilter(bad), bad).toThrow(/invalid --workflow/);
  });

  // Adversary 37 F4: records a submit left when it never committed (failed by reconciliation "submit did not
  // complete", or by the submit itself "submit failed: …"; Cromwell never got their ids, none ran) counted as
  // failed tasks and had per-call rows: 133 tasks and 28 failed, for 109 calls submitted and 4 failed.
  it('counts the tasks of submits that never committed apart, out of the failures, calls and figures', () => {
    const call = (c: string): { cromwell_job_id: string } => ({ cromwell_job_id: `cromwell_29b8ffc5_${c}` });
    const ran = rec({ id: 1, status: 4, queued_at: 0, started_at: 5, ended_at: 10, ...call('a') });
    const killed = rec({
      id: 2,
      status: -2,
      reason: 'exit code 137',
      queued_at: 0,
      started_at: 5,
      ended_at: 20,
      ...call('a'),
    });
    const never = [
      rec({
        id: 3,
        status: -2,
        reason: 'submit did not complete',
        queued_at: 0,
        ended_at: 90,
        attempts: 1,
        ...call('b'),
      }),
      rec({
        id: 4,
        status: -2,
        reason: 'submit failed: OOM command not allowed when used memory > maxmemory',
        queued_at: 0,
        ended_at: 1,
        attempts: 1,
        ...call('c'),
      }),
    ];
    // The same reason on a task that started is not one of them (no code writes that, but the rule must not guess).
    const started = rec({
      id: 5,
      status: -2,
      reason: 'submit did not complete',
      queued_at: 0,
      started_at: 2,
      ended_at: 3,
      ...call('d'),
    });
    const { data, heavyIds } = analyse([ran, killed, ...never, started], {}, 200);
    expect(data.never_committed).toBe(2);
    expect(data.tasks).toBe(3);
    expect(data.by_status).toEqual({ success: 1, failed: 2 });
    expect(data.failures.count).toBe(2);
    expect(data.failures.latest.map(f => f.id)).toEqual([2, 5]);
    expect(data.groups.map(g => g.name).sort()).toEqual(['a', 'd']);
    expect(data.wall_s?.count).toBe(3);
    expect(data.queue_wait_s?.count).toBe(3);
    expect(data.attempts.total).toBe(0);
    expect(heavyIds).not.toContain(3);
    expect(analyse([ran], {}, 200).data.never_committed).toBe(0);
  });

  // Adversary 37 F5: every digit became N: `script: 8981639139…` read `bbNcNbNbbeacaNceNbaNcN`, a worker
  // `vm-2846-402c9f` read `vm-N-NcNf`.
  it('groups failure reasons by their words: whole numbers and hex tokens replaced, Redis script tails cut', () => {
    const sha = '8981639139bbcb1bbeac4ace3ba7c2f4b3a9c1e8';
    expect(reasonGroup('exit code 2')).toBe('exit code N');
    expect(reasonGroup('exit code 137')).toBe('exit code N');
    expect(reasonGroup('out of memory: peak 205.3 MB of the 200 MB limit')).toBe(
      'out of memory: peak N MB of the N MB limit',
    );
    expect(reasonGroup('worker vm-2846-402c9f stopped beating (last beat 12 s ago)')).toBe(
      'worker vm-N-402c9f stopped beating (last beat N s ago)',
    );
    expect(
      reasonGroup(
        `lost its lease: OOM command not allowed when used memory > 'maxmemory'. script: ${sha}, on @user_script:12.`,
      ),
    ).toBe("lost its lease: OOM command not allowed when used memory > 'maxmemory'.");
    expect(reasonGroup(`commit ${sha} of run 9f8e7d6c5b4a ended`)).toBe('commit <hex> of run <hex> ended');
    // Words of hex letters only, and short hex, stay as written.
    expect(reasonGroup('deadbeefcafe accessed in 2d8 at bin2hex')).toBe(
      'deadbeefcafe accessed in 2d8 at bin2hex',
    );
    const records = [
      rec({ id: 1, status: -2, reason: `NOSCRIPT script: ${sha}, on @user_script:1.` }),
      rec({
        id: 2,
        status: -2,
        reason: 'NOSCRIPT script: 0123456789abcdef0123456789abcdef01234567, on @user_script:3.',
      }),
    ];
    expect(analyse(records, {}, 200).data.failures.by_reason).toEqual([{ reason: 'NOSCRIPT', count: 2 }]);
    // A tail with a hash of another length (another server, a cut message) is cut too.
    expect(reasonGroup('BUSY script: 8981639139bbcb1bbeac4ace3ba7c2, on @user_script:7: x')).toBe('BUSY: x');
  });
});
