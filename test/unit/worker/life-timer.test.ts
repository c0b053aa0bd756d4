import { describe, expect, it } from 'vitest';

import { outliveWhy, startLifeTimer, type LifeWatch } from '../../../src/worker/end-of-life.js';

/** A worker as the life timer sees it, with what it logged and whether it was stopped. */
function watch(over: Partial<LifeWatch>): { w: LifeWatch; lines: string[]; stopped: () => boolean } {
  const lines: string[] = [];
  let stopped = false;
  const log = { info: (_o: unknown, msg: string) => lines.push(msg) } as unknown as LifeWatch['log'];
  const w: LifeWatch = {
    idleTimeoutMs: 300_000,
    endOfLife: Date.now() + 3_600_000,
    log,
    isStopping: () => stopped,
    runningCount: () => 0,
    lastBusy: () => Date.now() - 20_000,
    state: () => 'running',
    onIdle: () => (stopped = true),
    onEndOfLife: () => {},
    onLifeOver: () => (stopped = true),
    outlived: () => false,
    ...over,
  };
  return { w, lines, stopped: () => stopped };
}

describe('the life timer', () => {
  it('stops a worker that only leaves its tasks for workers with more time (adversary 7 H4), not an idle one before its timeout', async () => {
    const useless = watch({ outlived: () => true });
    const idle = watch({});
    const timers = [startLifeTimer(useless.w), startLifeTimer(idle.w)];
    await new Promise(r => setTimeout(r, 1300));
    timers.forEach(clearInterval);
    expect(useless.stopped()).toBe(true);
    expect(useless.lines).toEqual([
      "no task of its pool fits in this worker's remaining life: stopping (its allocation is given back)",
    ]);
    expect([idle.stopped(), idle.lines]).toEqual([false, []]);
  });

  it('does not stop one that runs a task', async () => {
    const busy = watch({ outlived: () => true, runningCount: () => 1 });
    const timer = startLifeTimer(busy.w);
    await new Promise(r => setTimeout(r, 1300));
    clearInterval(timer);
    expect(busy.stopped()).toBe(false);
  });
});

describe('why a task is left for a worker with more time (adversary 15 P11b)', () => {
  it('names the margin when the limit fits the life left but not the life less the margin', () => {
    expect(outliveWhy(10_000, Date.now() + 37_000, false)).toMatch(
      /^its time limit is 00:00:10, more than the 00:00:3[67] this worker has left less the 30 s kept at the end$/,
    );
  });
  it('does not speak of a time limit for a task that has none', () => {
    const end = Date.now() + 37_000;
    expect(outliveWhy(undefined, end, true)).toMatch(
      /^it has no time limit and this worker is draining, with 00:00:3[67] left$/,
    );
    expect(outliveWhy(undefined, Date.now() + 25_000, false)).toMatch(
      /^it has no time limit and this worker has 00:00:2[45] left, less than the 30 s kept at the end$/,
    );
    expect(outliveWhy(60_000, end, true)).toMatch(
      /^its time limit is 00:01:00 and this worker is draining, with/,
    );
  });
});
