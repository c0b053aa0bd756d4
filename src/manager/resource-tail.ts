import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import { listLiveWorkers } from '../pools/live-workers.js';
import { sampleOfEntry } from '../tasks/resource-format.js';

/**
 * `jtm manager -r`: logs the resource samples of running tasks as they arrive (the original's RESOURCE
 * log lines). Opt-in, and kept out of the sweep: it costs one read per running task per interval.
 */
export class ResourceTail {
  private readonly lastIds = new Map<number, string>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly ctx: JtmContext,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const running = new Set((await listLiveWorkers(this.ctx)).flatMap(w => w.running));
      for (const id of this.lastIds.keys()) if (!running.has(id)) this.lastIds.delete(id);
      if (running.size === 0) return;
      const pipeline = this.ctx.redis.pipeline();
      const ids = [...running];
      for (const id of ids)
        pipeline.xrange(
          this.ctx.keys.taskResources(id),
          `(${this.lastIds.get(id) ?? `${Date.now() - this.intervalMs}-0`}`,
          '+',
        );
      const res = (await pipeline.exec()) ?? [];
      ids.forEach((id, i) => {
        const entries = (res[i]?.[1] ?? []) as [string, string[]][];
        for (const [entryId, fields] of entries) {
          this.lastIds.set(id, entryId);
          let resource: unknown;
          try {
            resource = sampleOfEntry(fields) ?? null;
          } catch {
            // A malformed sample is still shown, as the text it is.
            resource = fields[fields.indexOf('sample') + 1];
          }
          this.ctx.logger.info({ task: id, resource }, 'RESOURCE');
        }
      });
    } catch (err) {
      this.ctx.logger.debug({ err: toError(err) }, 'resource tail failed');
    } finally {
      this.busy = false;
    }
  }
}
