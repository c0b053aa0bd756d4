import { CLOCK_TICKS, type ProcInfo } from './proc-files.js';

// The record's format (fields, CSV) is the task's resource stream, read by `jtm resource-log` and the report
// as well: it lives in src/tasks, and is re-exported here for the sampler's callers.
export {
  csvHeader,
  csvLine,
  RESOURCE_FIELDS,
  type ResourceField,
  type ResourceSample,
} from '../tasks/resource-format.js';
import type { ResourceSample } from '../tasks/resource-format.js';
import type { AllocationFacts, WorkerOptions } from './worker-options.js';

/** What the worker knows about itself, the same for every sample it takes. */
export interface WorkerIdentity extends AllocationFacts, Pick<WorkerOptions, 'workerId' | 'endOfLife'> {
  hostName: string;
  ipAddress: string | null;
  poolName: string;
  rootPid: number;
}

/** CPU counter of the previous sample, to turn cumulative CPU time into a load over the interval. */
export interface SampleState {
  cpuTicks: number;
  at: number;
  /** The largest resident sum of the tree in one sample (pages shared between processes counted in each). */
  peakRssBytes: number;
  /** The largest resident size of any one process in one sample (file pages it maps included). */
  peakProcessBytes?: number;
}

const MB = 1024 * 1024;

/** `YYYY-MM-DD HH:MM:SS` in local time, as the original's end_date. */
export function formatDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * One sample of a task's process tree: CPU load (% of one core over the last interval), resident and
 * virtual memory summed over the live tree (fresh each time), node memory use, run time and life left.
 */
export function buildSample(
  procs: readonly ProcInfo[],
  prev: SampleState | undefined,
  task: { id: number; pid: number; startedAt: number; numTasks: number },
  me: WorkerIdentity,
  node: { usedPercent: number },
  now: number,
): { sample: ResourceSample; state: SampleState } {
  const cpuTicks = procs.reduce((s, p) => s + p.cpuTicks, 0);
  const rss = procs.reduce((s, p) => s + p.rssBytes, 0);
  const vsize = procs.reduce((s, p) => s + p.vsizeBytes, 0);
  const since = prev ? prev.at : task.startedAt;
  const ticksBefore = prev ? prev.cpuTicks : 0;
  const seconds = Math.max(0.001, (now - since) / 1000);
  const cpuLoad = Math.max(0, ((cpuTicks - ticksBefore) / CLOCK_TICKS / seconds) * 100);
  const lifeLeftMin = me.endOfLife === undefined ? 0 : Math.max(0, Math.floor((me.endOfLife - now) / 60000));
  const sample: ResourceSample = {
    child_pid: task.pid,
    clone_time_rate: 0,
    cpu_load: round1(cpuLoad),
    end_date: formatDate(now),
    host_name: me.hostName,
    ip_address: me.ipAddress,
    job_time: me.jobTime,
    life_left: lifeLeftMin,
    mem_per_core: me.memPerCore,
    mem_per_node: me.memPerNode,
    num_cores: me.numCores,
    num_tasks: task.numTasks,
    num_workers_on_this_node: me.workersOnNode,
    perc_mem_used: round1(node.usedPercent),
    pool_name: me.poolName,
    ret_msg: 'running',
    rmem_usage: round1(rss / MB),
    root_pid: me.rootPid,
    run_time: Math.round((now - task.startedAt) / 1000),
    slurm_jobid: me.slurmJobId,
    task_id: task.id,
    vmem_usage: round1(vsize / MB),
    worker_id: me.workerId,
    worker_type: me.workerType,
  };
  return {
    sample,
    state: {
      cpuTicks: Math.max(cpuTicks, ticksBefore),
      at: now,
      peakRssBytes: Math.max(prev?.peakRssBytes ?? 0, rss),
      peakProcessBytes: procs.reduce((m, p) => Math.max(m, p.rssBytes), prev?.peakProcessBytes ?? 0),
    },
  };
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
