import { setTimeout as sleep } from 'node:timers/promises';

import { isConnectionError } from './connection.js';

/**
 * Runs `attempt` until it succeeds, fails for another reason, or Redis has stayed unreachable for `retryMs`
 * (then the last connection error is thrown). For the commands Cromwell cannot afford to lose to a transient
 * error: isalive (a non-zero exit means "dead") and kill (its exit code is ignored, so a failed kill leaves the
 * task running). Pauses double from 100 ms to 1 s.
 */
export async function retryWhileUnreachable<T>(attempt: () => Promise<T>, retryMs: number): Promise<T> {
  const deadline = Date.now() + retryMs;
  for (let pause = 100; ; pause = Math.min(pause * 2, 1000)) {
    try {
      return await attempt();
    } catch (err) {
      if (!isConnectionError(err) || Date.now() + pause >= deadline) throw err;
      await sleep(pause);
    }
  }
}
