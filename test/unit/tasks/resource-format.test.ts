import { describe, expect, it } from 'vitest';

import { lastRunSamples, runPeakOfEntry } from '../../../src/tasks/resource-format.js';

describe("a task's last run of samples (the charts')", () => {
  const s = (run_time: number, child_pid = 10, worker_id = 'w1') => ({ run_time, child_pid, worker_id });

  it('keeps every sample of a single run', () => {
    const one = [s(0), s(2), s(4)];
    expect(lastRunSamples(one)).toEqual(one);
    expect(lastRunSamples([])).toEqual([]);
  });

  it('keeps the last run only: a re-run after a lost worker drew from 0 s again over the first (adversary 9 J6)', () => {
    // As seen: t = 0, 2, 4 then 0, 1, 3 on another worker.
    expect(lastRunSamples([s(0), s(2), s(4), s(0, 20, 'w2'), s(1, 20, 'w2'), s(3, 20, 'w2')])).toEqual([
      s(0, 20, 'w2'),
      s(1, 20, 'w2'),
      s(3, 20, 'w2'),
    ]);
    // The same worker, another pid; or only the run time going back.
    expect(lastRunSamples([s(0), s(5), s(6, 11)])).toEqual([s(6, 11)]);
    expect(lastRunSamples([s(0), s(5), s(1)])).toEqual([s(1)]);
  });

  it("runPeakOfEntry: the entry's run peak field, by name only, a number ≥ 0 or nothing", () => {
    expect(runPeakOfEntry(['sample', '{}', 'run_peak_mb', '163'])).toBe(163);
    expect(runPeakOfEntry(['sample', '{}'])).toBeUndefined();
    expect(runPeakOfEntry(['run_peak_mb', 'x'])).toBeUndefined();
    expect(runPeakOfEntry(['run_peak_mb', '-1'])).toBeUndefined();
    // A value equal to the field's name is not a field.
    expect(runPeakOfEntry(['sample', 'run_peak_mb', 'x', '5'])).toBeUndefined();
  });
});
