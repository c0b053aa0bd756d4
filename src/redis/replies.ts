/** What ioredis gives for a pipeline or a transaction: one [error, reply] pair per command, null if aborted. */
export type Replies = [Error | null, unknown][] | null;

/**
 * The replies of a pipeline or transaction, or the first error among them, thrown: a refused or lost command
 * must not read as an empty reply (remove-pool took a refused HMGET for "no task" and went on). `what` names
 * it when the whole of it was aborted.
 */
export function repliesOrThrow(res: Replies, what: string): [Error | null, unknown][] {
  if (!res) throw new Error(`${what} aborted`);
  const failed = res.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
  return res;
}

/**
 * An error reply of a Redis that cannot take writes for a while: full (OOM under noeviction), a failed save
 * (MISCONF), a replica (READONLY), loading its data, a busy script, a cluster in change. Worth retrying a write
 * that must not be lost, unlike a refusal for good (NOPERM, WRONGTYPE, a bad argument).
 */
export function isTransientRefusal(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // A transaction refused as a whole (EXECABORT) for one of these (a BUSY script refuses every command it queues).
  const previous = (err as Error & { previousErrors?: unknown[] }).previousErrors;
  // Redis names the cause itself when the transaction's MULTI or EXEC was refused ("… because of: BUSY …").
  if (/^EXECABORT\b/.test(err.message) && previous?.some(isTransientRefusal)) return true;
  if (
    err.name === 'ReplyError' &&
    /^EXECABORT .*because of: (BUSY|MISCONF|READONLY|LOADING)\b/.test(err.message)
  )
    return true;
  // ioredis's Cluster client gives up on a command after a few redirections while the cluster is down or
  // changing (CLUSTERDOWN, MOVED to a master that is not ready, its connection closed): a plain Error. The
  // give-back of a run stopped during a cluster outage failed so, was not written again, and the task stayed
  // `running` on a live worker with no process, for good (adversary 11 L3).
  if (/^Too many Cluster redirections\b/.test(err.message)) return true;
  return (
    err.name === 'ReplyError' &&
    /^(OOM|MISCONF|READONLY|LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|NOREPLICAS)\b/.test(err.message)
  );
}

/**
 * Redis refusing the connection's credentials: WRONGPASS (a password rotated, a user disabled or deleted: every
 * reconnect's AUTH is refused, and ioredis fails the commands queued meanwhile with that refusal) or NOAUTH (a
 * password required where none was given). Not NOPERM: a right missing is refused for good (the worker exits).
 */
export function isCredentialsRefusal(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const previous = (err as Error & { previousErrors?: unknown[] }).previousErrors;
  if (/^EXECABORT\b/.test(err.message) && previous?.some(isCredentialsRefusal)) return true;
  return err.name === 'ReplyError' && /^(WRONGPASS|NOAUTH)\b/.test(err.message);
}

/**
 * A refusal that makes Redis out of a worker's reach for now, as a silent Redis is: one that takes no writes for a
 * while (isTransientRefusal), or one that refuses the worker's credentials until an operator puts them right (a
 * password rotated under it: isCredentialsRefusal). A worker waits such a refusal out: its beats are no answer (a
 * run it fenced is given back uncounted), and the end of a run it stopped is written once Redis takes it again.
 */
export function isOutageRefusal(err: unknown): boolean {
  return isTransientRefusal(err) || isCredentialsRefusal(err);
}

/**
 * A refusal of a Redis at its `maxmemory` under `noeviction` (OOM): it refuses the commands that may grow its
 * data, and still takes the others (PEXPIRE, DEL). A transaction holding one fails as EXECABORT, with the OOM
 * among ioredis's `previousErrors`.
 */
export function isOutOfMemory(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const previous = (err as Error & { previousErrors?: unknown[] }).previousErrors ?? [];
  return [err, ...previous].some(e => e instanceof Error && /^OOM\b/.test(e.message));
}
