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
