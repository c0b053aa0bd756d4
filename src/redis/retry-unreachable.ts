import { setTimeout as sleep } from 'node:timers/promises';

import { isConnectionError } from './connection.js';

export interface RetryOptions {
  /** Whether an error is worth another try. */
  retryable: (err: unknown) => boolean;
  /** How long tries go on, from the first; then the last error is thrown. */
  retryMs: number;
  /** The first pause; pauses double up to maxPauseMs. */
  firstPauseMs: number;
  maxPauseMs: number;
  /** Told of each failed try that will be retried (0-based), to log it. */
  onRetry?: (err: unknown, tries: number) => void;
}

/**
 * Runs `attempt` until it succeeds, fails with an error not `retryable`, or `retryMs` has passed. `attempt` is
 * given `more`: whether a retryable failure of it, now, would be tried again (the time left allows the pause);
 * once asked, the answer is kept for that try, so the attempt and the loop never disagree.
 */
export async function retryWhile<T>(
  attempt: (more: () => boolean) => Promise<T>,
  opts: RetryOptions,
): Promise<T> {
  const deadline = Date.now() + opts.retryMs;
  for (let pause = opts.firstPauseMs, tries = 0; ; pause = Math.min(pause * 2, opts.maxPauseMs), tries++) {
    let decided: boolean | undefined;
    const more = (): boolean => (decided ??= Date.now() + pause < deadline);
    try {
      return await attempt(more);
    } catch (err) {
      if (!opts.retryable(err) || !more()) throw err;
      opts.onRetry?.(err, tries);
      await sleep(pause);
    }
  }
}

/**
 * Runs `attempt` until it succeeds, fails for another reason, or Redis has stayed unreachable for `retryMs`
 * (then the last connection error is thrown). For the commands Cromwell cannot afford to lose to a transient
 * error: isalive (a non-zero exit means "dead") and kill (its exit code is ignored, so a failed kill leaves the
 * task running). Pauses double from 100 ms to 1 s.
 */
export function retryWhileUnreachable<T>(
  attempt: () => Promise<T>,
  retryMs: number,
  /** Other errors that pass by themselves and are worth the same retries (kill: a Redis refusing writes). */
  alsoRetry: (err: unknown) => boolean = () => false,
): Promise<T> {
  return retryWhile(attempt, {
    retryable: err => isConnectionError(err) || alsoRetry(err),
    retryMs,
    firstPauseMs: 100,
    maxPauseMs: 1000,
  });
}
