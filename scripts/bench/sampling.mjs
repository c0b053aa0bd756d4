// Benchmark 5: CPU cost of the worker's resource sampling (ProcessTree.refresh + buildSample + CSV line,
// as src/worker/sampler.ts does per task) for a 50-process tree sampled every 2 s, against the same
// process idle for the same time. Redis writes of the samples (XADD, job progress) are not included.
import { spawn } from 'node:child_process';

import { jtmModule } from './lib/jtm.mjs';
import { sleep } from './lib/stats.mjs';

const INTERVAL_MS = 2000;
const TREE = 50;

function cpuMs(since) {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

export async function run({ quick, log }) {
  const { ProcessTree, nodeMemory } = await jtmModule('worker/process-tree.js');
  const { buildSample, csvLine } = await jtmModule('worker/resource-sample.js');
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
    ];
  } finally {
    try {
      process.kill(-root.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
