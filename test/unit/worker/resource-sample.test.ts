import { describe, expect, it } from 'vitest';

import type { ProcInfo } from '../../../src/worker/proc-files.js';
import {
  buildSample,
  csvLine,
  RESOURCE_FIELDS,
  type WorkerIdentity,
} from '../../../src/worker/resource-sample.js';

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
});
