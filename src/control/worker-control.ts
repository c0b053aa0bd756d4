import type { JtmContext } from '../context.js';
import { closeConnection } from '../redis/connection.js';

/**
 * Requests addressed to one worker (kill a task) or to every worker of a pool (stop). A stop with `finish`
 * (remove-pool without --force) lets running tasks end however long they take; `force` kills them; neither
 * gives them the worker's shutdown grace, as SIGTERM does.
 */
export type ControlMessage =
  { type: 'kill'; task: number } | { type: 'stop'; force?: boolean; finish?: boolean };

export function parseControlMessage(text: string): ControlMessage | undefined {
  try {
    const m = JSON.parse(text) as { type?: unknown; task?: unknown; force?: unknown; finish?: unknown };
    if (m.type === 'kill' && typeof m.task === 'number') return { type: 'kill', task: m.task };
    if (m.type === 'stop') return { type: 'stop', force: m.force === true, finish: m.finish === true };
  } catch {
    // ignored: not ours
  }
  return undefined;
}

/**
 * Subscribes to the worker's own channel and its pool's channel, on a dedicated connection. Pub/sub may
 * drop a message while the worker is disconnected; kill intents are also in the task record, which the
 * worker re-reads on every heartbeat, so a missed message delays a kill but never loses it.
 */
export async function listenForControl(
  ctx: JtmContext,
  opts: { readonly workerId: string; readonly pool: string },
  onMessage: (msg: ControlMessage) => void,
): Promise<{ close(): Promise<void> }> {
  const sub = ctx.redis.duplicate();
  sub.on('error', () => {});
  sub.on('message', (_channel: string, text: string) => {
    const msg = parseControlMessage(text);
    if (msg) onMessage(msg);
  });
  await sub.subscribe(ctx.keys.workerControl(opts.workerId), ctx.keys.poolControl(opts.pool));
  return {
    // The one close of a subscriber: QUIT, bounded, then a hard disconnect (a dead server never hangs it).
    close: () => closeConnection(sub),
  };
}

/** Sends a control message to one worker; resolves with the number of receivers. */
export async function sendToWorker(ctx: JtmContext, workerId: string, msg: ControlMessage): Promise<number> {
  return ctx.redis.publish(ctx.keys.workerControl(workerId), JSON.stringify(msg));
}

export async function sendToPool(ctx: JtmContext, pool: string, msg: ControlMessage): Promise<number> {
  return ctx.redis.publish(ctx.keys.poolControl(pool), JSON.stringify(msg));
}
