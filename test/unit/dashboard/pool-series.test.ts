import { describe, expect, it } from 'vitest';

import { poolSeries } from '../../../src/dashboard/pool-page.js';
import type { TaskRecord } from '../../../src/store/task-record.js';

const MINUTE = 60_000;
/** A record of the fields poolSeries reads. */
const rec = (queued: number, started?: number, ended?: number, status = 4): TaskRecord =>
  ({
    id: 1,
    status,
    queued_at: queued,
    ...(started !== undefined ? { started_at: started } : {}),
    ...(ended !== undefined ? { ended_at: ended } : {}),
  }) as unknown as TaskRecord;

describe('pool page series', () => {
  // One minute, 40 tasks of 2 s on 4 slots, all queued at its start and all done 20 s later (adversary 5 G9:
  // sampled at the minute's end, the chart showed 0 queued and 0 running for it).
  const m0 = 100 * MINUTE;
  const now = m0 + 30 * 1000;
  const records = Array.from({ length: 40 }, (_, k) => {
    const start = m0 + 1000 + Math.floor(k / 4) * 2000;
    return rec(m0 + 1000, start, start + 2000);
  });
  const s = poolSeries(records, now);
  const last = s.t.length - 1;

  it('shows the most tasks queued and running at once within a minute', () => {
    expect(s.t[last]).toBe(m0 / 1000);
    // 36 waited while the first 4 ran; a slot handed from one task to the next is not 5 at once.
    expect([s.queued[last], s.running[last], s.finished[last], s.failed[last]]).toEqual([36, 4, 40, 0]);
    expect(s.queued.slice(0, last).every(v => v === 0)).toBe(true);
  });

  it('counts a task across the minutes it spans, and one that ended without running as waiting until then', () => {
    const long = rec(m0 - 2 * MINUTE + 5000, m0 - MINUTE + 10_000);
    const cancelled = rec(m0 - MINUTE + 1000, undefined, m0 - MINUTE + 2000, -4);
    const t = poolSeries([long, cancelled], now);
    const at = (minute: number): number[] => {
      const k = t.t.indexOf(minute / 1000);
      return [t.queued[k]!, t.running[k]!, t.finished[k]!, t.failed[k]!];
    };
    expect(at(m0 - 2 * MINUTE)).toEqual([1, 0, 0, 0]);
    expect(at(m0 - MINUTE)).toEqual([2, 1, 0, 1]);
    expect(at(m0)).toEqual([0, 1, 0, 0]);
  });

  it('counts a task given back after a run as running until its return, then waiting', () => {
    const back = {
      ...rec(m0 - 2 * MINUTE, m0 - 2 * MINUTE + 1000),
      status: 2,
      waiting_since: m0 - MINUTE + 5000,
    } as TaskRecord;
    const t = poolSeries([back], now);
    const at = (minute: number): number[] => {
      const k = t.t.indexOf(minute / 1000);
      return [t.queued[k]!, t.running[k]!];
    };
    expect(at(m0 - 2 * MINUTE)).toEqual([1, 1]);
    expect(at(m0 - MINUTE)).toEqual([1, 1]);
    expect(at(m0)).toEqual([1, 0]);
  });
});
