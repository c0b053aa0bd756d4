/**
 * A timeout that counts only the time this process could run.
 *
 * A plain setTimeout measures wall time. On a login node where Cromwell starts dozens of `jtm kill` or
 * `jtm submit` at once on two cores, each process waits seconds for a CPU: its timer and the socket carrying
 * Redis's answer become ready in the same turn, and Node runs timers before it reads sockets — so a healthy
 * Redis was reported unreachable (seen: 36 of 40 concurrent kills exiting 255 "no answer within 1500 ms",
 * leaving their tasks running while Cromwell took them as aborted).
 *
 * Here a short interval timer measures how late each of its ticks ran: lateness is time the process was
 * ready to run but not scheduled (a stall), and does not count against the budget. A Redis that accepts the
 * connection but never answers still fails after `budgetMs` on an idle machine; on a starved one the wait is
 * bounded by `capMs` of wall time. Before failing, the pending I/O gets one turn (setImmediate runs after the
 * poll phase), so an answer that already arrived wins.
 */
export class StallAwareTimeoutError extends Error {
  constructor(readonly budgetMs: number) {
    super(`no answer within ${budgetMs} ms`);
  }
}

/** How often the clock is read; lateness below TOLERANCE_MS is ordinary timer jitter, not a stall. */
const TICK_MS = 25;
const TOLERANCE_MS = 15;

export function withStallAwareTimeout<T>(p: Promise<T>, budgetMs: number, capMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const start = Date.now();
    let last = start;
    let stalled = 0;
    let settled = false;
    const timer = setInterval(() => {
      const now = Date.now();
      stalled += Math.max(0, now - last - TICK_MS - TOLERANCE_MS);
      last = now;
      const elapsed = now - start;
      if (elapsed - stalled < budgetMs && elapsed < capMs) return;
      clearInterval(timer);
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new StallAwareTimeoutError(budgetMs));
      });
    }, TICK_MS);
    p.then(
      value => {
        clearInterval(timer);
        if (settled) return;
        settled = true;
        resolve(value);
      },
      (err: unknown) => {
        clearInterval(timer);
        if (settled) return;
        settled = true;
        reject(err);
      },
    );
  });
}
