import { describe, expect, it } from 'vitest';

import {
  suspensionDeadlineMs,
  suspensionVerdict,
  type SlurmLook,
} from '../../../src/manager/suspension-check.js';

const answered = (askedAt: number, states: Record<string, 'suspended' | 'running'>): SlurmLook => ({
  askedAt,
  answer: { jobs: new Map(Object.entries(states)) },
});

describe('suspensionVerdict: a dead worker in Slurm allocation 7', () => {
  it('follows an answer asked after the death: suspended, or lost (running or gone)', () => {
    expect(suspensionVerdict('7', 100, answered(100, { '7': 'suspended' }), 150)).toEqual({
      kind: 'suspended',
    });
    expect(suspensionVerdict('7', 100, answered(120, { '7': 'running' }), 150)).toEqual({ kind: 'lost' });
    expect(suspensionVerdict('7', 100, answered(120, {}), 150)).toEqual({ kind: 'lost' });
  });

  it('does not trust an answer asked before the death (the suspension may have come after it)', () => {
    expect(suspensionVerdict('7', 100, answered(99, { '7': 'running' }), 150)).toEqual({ kind: 'ask' });
    expect(suspensionVerdict('7', 100, undefined, 150)).toEqual({ kind: 'ask' });
  });

  it('waits while a squeue is under way, and asks again after one failed', () => {
    expect(suspensionVerdict('7', 100, { askedAt: 100 }, 150)).toEqual({ kind: 'wait' });
    expect(suspensionVerdict('7', 100, { askedAt: 90 }, 150)).toEqual({ kind: 'wait' });
    const failed: SlurmLook = { askedAt: 100, answer: { err: new Error('squeue timed out') } };
    expect(suspensionVerdict('7', 100, failed, 150)).toEqual({ kind: 'ask' });
  });

  it('counts the worker as lost once no answer came by the deadline, saying why', () => {
    const failed: SlurmLook = { askedAt: 100, answer: { err: new Error('squeue timed out') } };
    expect(suspensionVerdict('7', 100, failed, 100 + 120_000)).toEqual({
      kind: 'lost',
      why: 'squeue gave no usable answer for 120 s (squeue timed out)',
    });
    expect(suspensionVerdict('7', 100, { askedAt: 100 }, 100 + 120_000, 120_000)).toMatchObject({
      kind: 'lost',
      why: expect.stringContaining('(no answer)'),
    });
    // A fresh answer wins over the deadline.
    expect(suspensionVerdict('7', 100, answered(100, { '7': 'suspended' }), 10 ** 9)).toEqual({
      kind: 'suspended',
    });
  });
});

describe('suspensionDeadlineMs', () => {
  it('waits until the job lock would lapse, less the time to find the worker dead', () => {
    expect(suspensionDeadlineMs({ lockDurationMs: 30_000, heartbeatIntervalMs: 2000, missedBeats: 3 })).toBe(
      24_000,
    );
    // Never less than the sweep's own wait, never more than two minutes.
    expect(suspensionDeadlineMs({ lockDurationMs: 5000, heartbeatIntervalMs: 2000, missedBeats: 3 })).toBe(
      3000,
    );
    expect(
      suspensionDeadlineMs({ lockDurationMs: 3_600_000, heartbeatIntervalMs: 2000, missedBeats: 3 }),
    ).toBe(120_000);
  });
});
