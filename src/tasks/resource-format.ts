/**
 * The format of a task's resource samples (its `:resources` stream): the worker writes them, `jtm
 * resource-log` and the report read them. Kept in src/tasks so that readers need not import the worker.
 */
/** Column names of a resource sample, in the original README's order (CSV header and JSON keys). */
export const RESOURCE_FIELDS = [
  'child_pid',
  'clone_time_rate',
  'cpu_load',
  'end_date',
  'host_name',
  'ip_address',
  'job_time',
  'life_left',
  'mem_per_core',
  'mem_per_node',
  'num_cores',
  'num_tasks',
  'num_workers_on_this_node',
  'perc_mem_used',
  'pool_name',
  'ret_msg',
  'rmem_usage',
  'root_pid',
  'run_time',
  'slurm_jobid',
  'task_id',
  'vmem_usage',
  'worker_id',
  'worker_type',
] as const;

export type ResourceField = (typeof RESOURCE_FIELDS)[number];
export type ResourceSample = Record<ResourceField, string | number | null>;

export function csvHeader(): string {
  return `${RESOURCE_FIELDS.join(',')}\n`;
}

export function csvLine(sample: ResourceSample): string {
  return `${RESOURCE_FIELDS.map(f => csvCell(sample[f])).join(',')}\n`;
}

function csvCell(v: string | number | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The sample of one entry of a task's resource stream (its `sample` field, JSON), undefined for an entry
 * without one: the one decoder of the stream for resource-log, the report, the dashboard and the manager's tail.
 */
export function sampleOfEntry(fields: readonly string[]): Partial<ResourceSample> | undefined {
  const i = fields.indexOf('sample');
  if (i < 0) return undefined;
  return JSON.parse(fields[i + 1] as string) as Partial<ResourceSample>;
}

/**
 * The second field of a stream entry: the run's peak memory so far in MB, as the record will say it when the run
 * ends (entries written before it existed have none). The last entry of a running task's stream gives its peak
 * in O(1), where the samples' maximum would need the whole stream.
 */
export const RUN_PEAK_FIELD = 'run_peak_mb';

/** The run's peak so far (MB) that an entry carries, undefined without one. */
export function runPeakOfEntry(fields: readonly string[]): number | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] !== RUN_PEAK_FIELD) continue;
    const v = Number(fields[i + 1]);
    return Number.isFinite(v) && v >= 0 ? v : undefined;
  }
  return undefined;
}

/**
 * The samples of a task's last run: the stream keeps every run's (resource-log shows them all, each row with its
 * worker and pid), and a chart of two runs drew the second from 0 s again over the first (adversary 9 J6). A run
 * starts where the pid or the worker changes, or the run time goes back.
 */
export function lastRunSamples(samples: readonly Partial<ResourceSample>[]): Partial<ResourceSample>[] {
  let start = 0;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1] as Partial<ResourceSample>;
    const b = samples[i] as Partial<ResourceSample>;
    if (
      b.child_pid !== a.child_pid ||
      b.worker_id !== a.worker_id ||
      Number(b.run_time ?? 0) < Number(a.run_time ?? 0)
    )
      start = i;
  }
  return samples.slice(start);
}

/** The samples of an XRANGE reply over a task's resource stream, in stream order. */
export function samplesOfEntries(entries: readonly [string, string[]][]): Partial<ResourceSample>[] {
  return entries.flatMap(([, fields]) => sampleOfEntry(fields) ?? []);
}
