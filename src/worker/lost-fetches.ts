import { Job, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { isConnectionError, toError } from '../errors.js';
import { queuedCommands } from '../redis/command-queues.js';
import { runScript } from '../redis/run-script.js';
import { FIND_LOCKED_BY } from '../redis/scripts.js';

/** How long after the reconnect the jobs are looked for: the resent fetch has been answered and its job started. */
const SETTLE_MS = 2000;

/**
 * A fetch of this worker whose answer a dropped connection lost (BullMQ's moveToActive, or a moveToFinished that
 * fetches the next job): Redis made the job active under this worker's lock, and ioredis sent the fetch again on the
 * new connection, which took another job, or none, under the same token. The first job was known to no one: its lock
 * lapsed unrenewed and BullMQ's stalled check gave it back, up to JTM_LOCK_DURATION + JTM_STALLED_INTERVAL later
 * (a committed task waited 39 s in an idle pool after a Redis restart at its fetch: adversary 30 F3).
 *
 * When the connection closes with such a fetch unanswered, the active jobs locked by this worker's tokens and not
 * run here are looked for once the connection is back, and each is put back in its queue under its own lock
 * (BullMQ's moveToWait, which checks the token): taken again at once, by this worker or another. A job this worker
 * does run is never moved (`runsHere`), and one it fetches meanwhile holds a token it knows; were one moved all the
 * same, the task's record decides (a start under a live run is refused), as after the stalled check.
 */
export function watchLostFetches(o: {
  redis: Redis;
  worker: Worker;
  /** The queue's active list and the prefix of its job keys (`<queue prefix>:<queue>:`). */
  activeKey: string;
  jobKeyPrefix: string;
  runsHere: (jobId: string) => boolean;
  logger: Logger;
  settleMs?: number;
}): () => void {
  let suspect = false;
  let timer: NodeJS.Timeout | undefined;
  const onClose = (): void => {
    const fetches = fetchShas(o.redis);
    if (fetches.size === 0) return;
    for (const { command } of queuedCommands(o.redis))
      if (command.name === 'evalsha' && fetches.has(String(command.args[0]))) suspect = true;
  };
  const onReady = (): void => {
    if (!suspect || timer) return;
    suspect = false;
    timer = setTimeout(() => {
      timer = undefined;
      // Not looked through (the connection dropped again): looked for again after the next reconnect, or in a
      // while if the connection is up (adversary 32 F1: a failed look was never made again, and a lost job waited
      // for the stalled check).
      void putBack().catch((err: unknown) => {
        o.logger.warn(
          { err: toError(err).message },
          'could not look for jobs fetched as the connection dropped',
        );
        // Redis unreachable: again. Refused (an ACL without LRANGE or GET): not again every 2 s, for ever.
        if (!isConnectionError(err)) return;
        suspect = true;
        if (o.redis.status === 'ready') onReady();
      });
    }, o.settleMs ?? SETTLE_MS);
    timer.unref();
  };
  const putBack = async (): Promise<void> => {
    const found = await runScript<string[]>(
      o.redis,
      FIND_LOCKED_BY,
      [o.activeKey],
      [o.jobKeyPrefix, `${o.worker.id}:`],
    );
    let failed: unknown;
    for (let i = 0; i + 1 < found.length; i += 2) {
      const jobId = found[i] as string;
      const token = found[i + 1] as string;
      if (o.runsHere(jobId)) continue;
      // Each job on its own: one that ended meanwhile (its lock gone: BullMQ's "Missing lock") stopped the look
      // at the rest, and they waited for the stalled check (adversary 32 F1).
      try {
        const job = await Job.fromId(o.worker, jobId);
        if (!job || o.runsHere(jobId)) continue;
        await job.moveToWait(token);
        o.logger.warn(
          { job: jobId },
          "a job fetched as this worker's connection dropped (its answer lost) was put back in its queue",
        );
      } catch (err) {
        if (isConnectionError(err)) failed ??= err;
        else
          o.logger.debug(
            { job: jobId, err: toError(err).message },
            'a job found locked here ended meanwhile',
          );
      }
    }
    if (failed) throw failed;
  };
  o.redis.on('close', onClose);
  o.redis.on('ready', onReady);
  return () => {
    o.redis.off('close', onClose);
    o.redis.off('ready', onReady);
    if (timer) clearTimeout(timer);
  };
}

/** The SHA-1s of BullMQ's scripts that fetch a job, as BullMQ defined them on `redis` (ioredis's scriptsSet). */
function fetchShas(redis: Redis): Set<string> {
  const scripts = (redis as unknown as { scriptsSet?: Record<string, { sha?: string }> }).scriptsSet ?? {};
  const shas = new Set<string>();
  for (const [name, script] of Object.entries(scripts))
    if (/^(moveToActive|moveToFinished):/.test(name) && script.sha) shas.add(script.sha);
  return shas;
}
