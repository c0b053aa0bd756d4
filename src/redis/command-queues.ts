import type { Redis } from 'ioredis';

/** A command ioredis holds until Redis answers it (or until its resend, after a reconnect). */
export interface QueuedCommand {
  command: { name: string; args: unknown[]; reject(err: Error): void };
}
type Queue = { length: number; toArray(): QueuedCommand[] } | null | undefined;

/**
 * ioredis's queues of commands that wait on `redis`: sent (commandQueue); sent before a reset and kept for their
 * resend once the new connection is ready (prevCommandQueue); not sent yet (offlineQueue). The last two are
 * ioredis's own fields, not typed.
 */
function queues(redis: Redis): Queue[] {
  const { prevCommandQueue, offlineQueue } = redis as unknown as {
    prevCommandQueue?: Queue;
    offlineQueue?: Queue;
  };
  return [redis.commandQueue as unknown as Queue, prevCommandQueue, offlineQueue];
}

/** How many commands wait for an answer on `redis` (no array made: read at every tick of a watch). */
export function queuedCount(redis: Redis): number {
  return queues(redis).reduce((n, q) => n + (q?.length ?? 0), 0);
}

/** The commands that wait for an answer on `redis`, in each of ioredis's queues. */
export function queuedCommands(redis: Redis): QueuedCommand[] {
  return queues(redis).flatMap(q => q?.toArray() ?? []);
}
