// Benchmark 5: CPU cost of the worker's resource sampling (ProcessTree.refresh + buildSample + CSV line,
// as src/worker/sampler.ts does per task) for a 50-process tree sampled every 2 s, against the same
// process idle for the same time. Redis writes of the samples (XADD, job progress) are not included.
// 5b: the watch of a task without a cgroup (accounting.ts, JTM_WATCH_INTERVAL = 250 ms): ProcessTree.refresh
// plus each process's VmHWM, for the same tree, per watch from back-to-back runs.
import { spawn } from 'node:child_process';

import { jtmModule } from './lib/jtm.mjs';
import { sleep } from './lib/stats.mjs';

const INTERVAL_MS = 2000;
const WATCH_MS = 250;
/** As WATCH_BUDGET in src/worker/sampler.ts. */
const WATCH_BUDGET = 0.005;
const TREE = 50;

function cpuMs(since) {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

export async function run({ quick, log }) {
  const { ProcessTree } = await jtmModule('worker/process-tree.js');
  const { nodeMemory } = await jtmModule('worker/proc-files.js');
  const { buildSample, csvLine } = await jtmModule('worker/resource-sample.js');
  const { TaskAccounting } = await jtmModule('worker/accounting.js');
  // bash and 49 sleeping children: 50 processes in the tree.
  const root = spawn('/bin/bash', ['-c', `for i in $(seq ${TREE - 1}); do sleep 600 & done; wait`], {
    stdio: 'ignore',
    detached: true,
  });
  const durationMs = quick ? 10_000 : 60_000;
  try {
    await sleep(500);
    const tree = new ProcessTree(root.pid);
    const me = {
      workerId: 'bench',
      hostName: 'h',
      ipAddress: null,
      poolName: 'p',
      rootPid: process.pid,
      slurmJobId: 0,
      workerType: 0,
      numCores: 2,
      memPerNode: '',
      memPerCore: '',
      jobTime: null,
      workersOnNode: 1,
    };
    let state;
    let size = 0;
    const sampleOnce = () => {
      const procs = tree.refresh();
      size = procs.length;
      const { sample, state: next } = buildSample(
        procs,
        state,
        { id: 1, pid: root.pid, startedAt: Date.now(), numTasks: 1 },
        me,
        nodeMemory(),
        Date.now(),
      );
      state = next;
      return csvLine(sample);
    };
    sampleOnce();
    if (size !== TREE) throw new Error(`tree has ${size} processes, expected ${TREE}`);
    // Idle first, then sampling, each for the same wall time: the difference is the sampler's cost.
    const idleStart = process.cpuUsage();
    await sleep(durationMs);
    const idle = cpuMs(idleStart);
    const busyStart = process.cpuUsage();
    const timer = setInterval(sampleOnce, INTERVAL_MS);
    await sleep(durationMs);
    clearInterval(timer);
    const busy = cpuMs(busyStart);
    // The cost of one sample, from many back to back: a steadier figure than a few timer ticks.
    const k = 200;
    const t = process.cpuUsage();
    for (let i = 0; i < k; i++) sampleOnce();
    const perSample = cpuMs(t) / k;
    // 5b: one watch of the tree, as the Sampler's watch timer does for a procfs-mode task.
    const acct = new TaskAccounting('procfs', undefined, undefined);
    const w = process.cpuUsage();
    for (let i = 0; i < k; i++) acct.observe(tree.refresh());
    const perWatch = cpuMs(w) / k;
    // The Sampler waits longer than JTM_WATCH_INTERVAL when a watch round would cost more than its budget.
    const watchEvery = Math.max(WATCH_MS, perWatch / WATCH_BUDGET - perWatch);
    const perWatchPct = (perWatch / (watchEvery + perWatch)) * 100;
    const overheadPct = ((busy - idle) / durationMs) * 100;
    const perSamplePct = (perSample / INTERVAL_MS) * 100;
    log(
      `  idle ${idle.toFixed(1)} ms CPU, sampling ${busy.toFixed(1)} ms CPU over ${durationMs / 1000} s; ${perSample.toFixed(2)} ms per sample`,
    );
    return [
      {
        id: '5',
        figure: `5. sampling a ${TREE}-process tree every 2 s for ${durationMs / 1000} s: % of one core`,
        value: perSamplePct,
        unit: ' %',
        baselineName: 'idle vs timer run, same wall time',
        baseline: overheadPct,
        baselineUnit: ' % (difference, noise-bound)',
        target: '< 1 %',
        pass: perSamplePct < 1 && overheadPct < 1,
        note: `${perSample.toFixed(2)} ms CPU per sample`,
      },
      {
        id: '5b',
        figure: `5b. watching the same tree (procfs accounting: tree + VmHWM), every ${WATCH_MS} ms or as the 0.5 % budget allows: % of one core`,
        value: perWatchPct,
        unit: ' %',
        baselineName: 'every 250 ms regardless',
        baseline: (perWatch / WATCH_MS) * 100,
        baselineUnit: ' %',
        target: '< 1 %',
        pass: perWatchPct < 1,
        note: `${perWatch.toFixed(2)} ms CPU per watch (${((perWatch / TREE) * 1000).toFixed(0)} µs per process), one watch every ${Math.round(watchEvery)} ms`,
      },
    ];
  } finally {
    try {
      process.kill(-root.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
