import type { BaseAdapter } from '@bull-board/api/baseAdapter';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { Queue } from 'bullmq';

import { allShards, forPool, type JtmContext } from '../context.js';
import { toError } from '../errors.js';
import { listPoolNames } from '../pools/pool-registry.js';
import { openPoolQueue } from '../tasks/pool-queue.js';

export interface BoardQueues {
  addQueue: (queue: BaseAdapter) => void;
  removeQueue: (queueOrName: string | BaseAdapter) => void;
}

/**
 * Keeps bull-board's queue list equal to the pool registry: a queue per pool, added when the pool
 * appears (first submit), removed when it disappears (remove-pool, idle expiry). Polls the registry.
 */
export class QueueSync {
  private readonly queues = new Map<string, Queue>();
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;

  constructor(
    private readonly ctx: JtmContext,
    private readonly board: BoardQueues,
    private readonly options: { readOnly: boolean },
  ) {}

  get pools(): string[] {
    return [...this.queues.keys()].sort();
  }

  start(intervalMs: number): Promise<void> {
    this.timer = setInterval(() => void this.sync(), intervalMs);
    return this.sync();
  }

  sync(): Promise<void> {
    this.syncing ??= this.apply().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async apply(): Promise<void> {
    let names: string[];
    try {
      names = (await Promise.all(allShards(this.ctx).map(s => listPoolNames(s)))).flat().sort();
    } catch (err) {
      this.ctx.logger.warn({ err: toError(err) }, 'pool registry not readable');
      return;
    }
    const wanted = new Set(names);
    for (const name of names) {
      if (this.queues.has(name)) continue;
      const queue = openPoolQueue(forPool(this.ctx, name), name);
      this.queues.set(name, queue);
      this.board.addQueue(
        new BullMQAdapter(queue, {
          readOnlyMode: this.options.readOnly,
          allowRetries: !this.options.readOnly,
          description: `pool ${name}`,
        }),
      );
      this.ctx.logger.info({ pool: name }, 'pool queue added');
    }
    for (const [name, queue] of this.queues) {
      if (wanted.has(name)) continue;
      this.board.removeQueue(name);
      this.queues.delete(name);
      await queue.close().catch(() => {});
      this.ctx.logger.info({ pool: name }, 'pool queue removed');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.syncing;
    await Promise.all([...this.queues.values()].map(q => q.close().catch(() => {})));
    this.queues.clear();
  }
}
