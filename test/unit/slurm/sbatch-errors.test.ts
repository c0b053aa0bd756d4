import { describe, expect, it } from 'vitest';

import { isTransientSbatchError } from '../../../src/slurm/slurm-commands.js';

// Slurm's own messages (slurm 22.05 here; adversary 7 H5: a drained partition failed every call in 30 s).
describe('sbatch refusals', () => {
  it('that may heal are told from those that cannot', () => {
    const e = (m: string): string => `sbatch failed: sbatch: error: Batch job submission failed: ${m}`;
    const transient = [
      e('Required partition not available (inactive or drain)'),
      'sbatch failed: sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)',
      e('Socket timed out on send/recv operation'),
      e('Resource temporarily unavailable'),
      e('Zero Bytes were transmitted or received'),
      // The specific reason of a submit limit is on a line of its own, before the generic one.
      `sbatch: error: QOSMaxSubmitJobPerUserLimit\n${e("Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)")}`,
    ];
    const permanent = [
      e('Invalid partition name specified'),
      e('Requested node configuration is not available'),
      e('Invalid account or account/partition combination specified'),
      e('Invalid qos specification'),
      'sbatch: command not found',
      // The generic line alone also covers limits that never heal (a wall time over the QOS's maximum).
      e("Job violates accounting/QOS policy (job submit limit, user's size and/or time limits)"),
      // The job may exist anyway: retrying for an hour could leave orphan allocations.
      'sbatch: timed out',
    ];
    expect(transient.filter(isTransientSbatchError)).toEqual(transient);
    expect(permanent.filter(isTransientSbatchError)).toEqual([]);
  });
});
