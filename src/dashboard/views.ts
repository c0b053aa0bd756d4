import { allShards, forTask, type JtmContext } from '../context.js';
import { listLiveWorkers, type LiveWorker } from '../pools/live-workers.js';
import { refuseReplica } from '../redis/replica-check.js';
import { isActive, statusName } from '../tasks/status.js';
import { jobIdOf } from '../tasks/job-data.js';
import { PAGE_FIELDS, type TaskRecord } from '../store/task-record.js';
import type { TaskEvent } from '../store/task-store.js';
import { esc, isoTime, page, table } from '../http/html.js';
import { workerLoads, type WorkerLoad } from './worker-load.js';

/**
 * Resource sample columns shown in the task view (the full samples are in the JSON and the CSV), with their units
 * in the heading: the original's names, which said neither the unit nor that perc_mem_used is the whole node's
 * (adversary 14 F5: read as the task's share).
 */
const SAMPLE_COLUMNS: readonly (readonly [string, string])[] = [
  ['end_date', 'end_date'],
  ['run_time', 'run_time (s)'],
  ['cpu_load', 'cpu_load (% of one core)'],
  ['rmem_usage', 'rmem_usage (MB resident, the task)'],
  ['vmem_usage', 'vmem_usage (MB virtual, the task)'],
  ['perc_mem_used', "perc_mem_used (% of the node's memory in use, all processes)"],
];
/** Longer commands show their start, the rest folded (a 60 KB command made the page 7,500 px tall). */
const COMMAND_SHOWN = 1000;
const MAX_SAMPLES = 100;

export interface TaskLookup {
  record: TaskRecord;
  events: TaskEvent[];
  /** Newest first, at most 100. */
  samples: Record<string, unknown>[];
}

export async function lookupTask(anyShard: JtmContext, id: number): Promise<TaskLookup | undefined> {
  const ctx = forTask(anyShard, id);
  const [found, raw] = await Promise.all([
    ctx.tasks.details(id),
    ctx.redis.xrevrange(ctx.keys.taskResources(id), '+', '-', 'COUNT', MAX_SAMPLES),
  ]);
  // A replica re-syncing after a failover is not trusted to say a task does not exist (refuseReplica: 503).
  if (!found) {
    await refuseReplica(ctx);
    return undefined;
  }
  const { record, events } = found;
  const samples = raw.flatMap(([, fields]) => {
    const i = fields.indexOf('sample');
    try {
      return i >= 0 ? [JSON.parse(fields[i + 1] ?? '') as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
  return { record, events, samples };
}

export async function listWorkers(ctx: JtmContext): Promise<LiveWorker[]> {
  return (await Promise.all(allShards(ctx).map(s => listLiveWorkers(s)))).flat();
}

function taskLink(base: string, id: number): string {
  return `<a href="${base}/task?id=${id}">${id}</a>`;
}

/** CPU (% of one core) and memory of a worker's running tasks, from their latest samples. */
function loadCell(load: WorkerLoad | undefined): string {
  return load
    ? `<span class="load">${Math.round(load.cpu)} % CPU · ${Math.round(load.mem_mb)} MB</span>`
    : '';
}

/**
 * Tasks running at its last beat of its slots, and, where more ran at once since the beat before, that figure:
 * with tasks of a few milliseconds the beat's instant mostly falls between two runs.
 */
export function busyCell(w: { running: readonly number[]; busy_peak: number; slots: number }): string {
  const now = w.running.length;
  const peak = Math.max(w.busy_peak, now);
  return peak > now
    ? `${now} / ${w.slots} <span class="load" title="the most at once since its previous heartbeat">(up to ${peak})</span>`
    : `${now} / ${w.slots}`;
}

export async function workersPage(ctx: JtmContext, base: string, now = Date.now()): Promise<string> {
  const workers = (await listWorkers(ctx)).sort(
    (a, b) => a.pool.localeCompare(b.pool) || a.id.localeCompare(b.id),
  );
  const loads = await workerLoads(ctx, workers);
  const rows = workers.map(w => [
    `<code>${esc(w.id)}</code>`,
    `<a href="${base}/pool?name=${encodeURIComponent(w.pool)}">${esc(w.pool)}</a>`,
    esc(w.host),
    esc(w.state),
    busyCell(w),
    loadCell(loads.get(w.id)),
    w.running.map(id => taskLink(base, id)).join(' '),
    `${esc(isoTime(w.last_beat))} (${Math.max(0, Math.round((now - w.last_beat) / 1000))} s ago)`,
    w.slurm_job_id ? String(w.slurm_job_id) : '',
  ]);
  const body = table(
    ['Worker', 'Pool', 'Host', 'State', 'Busy', 'Load', 'Running tasks', 'Last heartbeat', 'Slurm job'],
    rows,
    'No live worker.',
  );
  return page('Workers', `<p>${workers.length} live workers.</p>${body}`, base);
}

export async function taskPage(
  ctx: JtmContext,
  base: string,
  id: number | undefined,
  allowActions: boolean,
): Promise<{ status: number; html: string }> {
  const form = `<form method="get" action="${base}/task"><label>Task id <input name="id" inputmode="numeric" value="${esc(id ?? '')}"></label> <button>Look up</button></form>`;
  if (id === undefined) return { status: 200, html: page('Task lookup', form, base) };
  const found = await lookupTask(ctx, id);
  if (!found)
    return {
      status: 404,
      html: page(`Task ${id}`, `${form}<p class="empty">No task with id ${id}.</p>`, base),
    };
  const { record, events, samples } = found;
  const value = (k: keyof TaskRecord): string => {
    const v = record[k];
    if (k === 'status_name') return `<span class="status-${esc(v)}">${esc(v)}</span>`;
    if (k.endsWith('_at') && typeof v === 'number') return esc(isoTime(v));
    return k === 'command' ? commandCell(String(v)) : esc(v);
  };
  const fields = table(
    ['Field', 'Value'],
    PAGE_FIELDS.filter(k => record[k] !== undefined).map(k => [esc(k), value(k)]),
    '',
  );
  const history = table(
    ['Time', 'From', 'To', 'Reason'],
    events.map(e => [esc(isoTime(e.t)), esc(named(e.from)), esc(named(e.to)), esc(e.reason)]),
    'No history.',
  );
  const sampleTable = table(
    SAMPLE_COLUMNS.map(([, heading]) => heading),
    samples.map(s => SAMPLE_COLUMNS.map(([c]) => esc(s[c]))),
    'No resource samples.',
  );
  const kill =
    allowActions && isActive(record.status)
      ? `<form method="post" action="${base}/task/${id}/kill"><button>Kill task ${id}</button></form>`
      : '';
  // Its BullMQ job in bull-board (the job id through the one codec, tasks/job-data.ts).
  const job = `<p><a href="${base}/queues/queue/${encodeURIComponent(record.pool)}/${encodeURIComponent(jobIdOf(id))}">Job ${esc(jobIdOf(id))} in queue ${esc(record.pool)}</a></p>`;
  const live = `<p><a href="${base}/task/live?id=${id}">Live view: CPU and memory charts, output</a></p>`;
  const body = `${form}${live}${kill}${job}<h2>Record</h2>${fields}<h2>History</h2>${history}<h2>Resource samples</h2>${sampleTable}`;
  return { status: 200, html: page(`Task ${id}`, body, base) };
}

/** A status code with its name, as `jtm status` prints it: `running (3)`. */
function named(code: number): string {
  return `${statusName(code)} (${code})`;
}

/** A command in the record table: whole up to COMMAND_SHOWN characters, else its start and the rest folded. */
function commandCell(command: string): string {
  if (command.length <= COMMAND_SHOWN) return `<code>${esc(command)}</code>`;
  const rest = command.length - COMMAND_SHOWN;
  return `<code>${esc(command.slice(0, COMMAND_SHOWN))}</code><details><summary>${rest.toLocaleString('en-US')} more characters</summary><code>${esc(command.slice(COMMAND_SHOWN))}</code></details>`;
}
