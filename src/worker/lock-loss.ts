import { ErrorCode } from 'bullmq';

const LOCK_LOSS = /^(could not renew lock for job|Missing lock for job|Lock mismatch for job) /;

/**
 * Whether a BullMQ worker error says it lost a job's lock: a renewal that failed (Redis out of reach, or slow), or
 * a finish refused because the lock had lapsed or passed to another delivery. In JTM that is routine — a run
 * given back by fencing, taken over, or handed back by BullMQ's stalled check after an outage — and the task's
 * record, not the job's lock, decides what becomes of the task. Logged at error level with BullMQ's stack, every
 * recovery that worked read like a crash (adversary 29 F3).
 */
export function isJobLockLoss(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (code === ErrorCode.JobLockNotExist || code === ErrorCode.JobLockMismatch) return true;
  return typeof message === 'string' && LOCK_LOSS.test(message);
}
