import { forTask, type JtmContext } from '../context.js';
import type { LiveWorker } from '../pools/live-workers.js';

export interface WorkerLoad {
  /** CPU % of one core, summed over the worker's running tasks (their latest samples). */
  cpu: number;
  /** Resident MB summed the same way. */
  mem_mb: number;
}

/** Load of each worker from the latest resource sample of each task it runs: one pipeline for all. */
export async function workerLoads(
  ctx: JtmContext,
  workers: readonly LiveWorker[],
): Promise<Map<string, WorkerLoad>> {
  const pairs = workers.flatMap(w => w.running.map(id => ({ worker: w.id, id })));
  const loads = new Map<string, WorkerLoad>(workers.map(w => [w.id, { cpu: 0, mem_mb: 0 }]));
  if (pairs.length === 0) return loads;
  // One read per task rather than one pipeline: on a sharded site the tasks are in several slots.
  const results = await Promise.all(
    pairs.map(p => {
      const s = forTask(ctx, p.id);
      return s.redis.xrevrange(s.keys.taskResources(p.id), '+', '-', 'COUNT', 1).then(
        entries => [null, entries] as const,
        (err: unknown) => [err, []] as const,
      );
    }),
  );
  results.forEach(([err, entries], n) => {
    const [entry] = err ? [] : (entries as [string, string[]][]);
    const i = entry ? entry[1].indexOf('sample') : -1;
    if (!entry || i < 0) return;
    const s = JSON.parse(entry[1][i + 1] as string) as { cpu_load?: number; rmem_usage?: number };
    const load = loads.get((pairs[n] as { worker: string }).worker) as WorkerLoad;
    load.cpu += Number(s.cpu_load ?? 0);
    load.mem_mb += Number(s.rmem_usage ?? 0);
  });
  return loads;
}
