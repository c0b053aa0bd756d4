import { describe, expect, it } from 'vitest';

import { isSlurmClientFault, isTransientSbatchError } from '../../../src/slurm/slurm-commands.js';

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

  it("from this host's own Slurm client are told from Slurm's refusals (adversary 39 F1)", () => {
    const client = [
      'sbatch failed: sbatch: command not found',
      'sbatch failed: sbatch: cannot start (EACCES)',
      'squeue failed: squeue: error: s_p_parse_file: cannot stat file /nonexistent: No such file or directory, retrying in 1sec up to 60sec',
      'sbatch failed: sbatch: error: ClusterName needs to be specified',
      'squeue failed: squeue: fatal: Could not establish a configuration source',
      'sbatch failed: sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)',
      'squeue failed: squeue: error: Munge encode failed: Failed to access "/run/munge/munge.socket.2"',
    ];
    const slurm = [
      'sbatch failed: sbatch: error: Batch job submission failed: Invalid partition name specified',
      'sbatch failed: sbatch: error: Batch job submission failed: Requested node configuration is not available',
      'sbatch failed: sbatch: error: Batch job submission failed: Invalid qos specification',
      'sbatch failed: sbatch: timed out',
      'squeue failed: squeue: error: Invalid user: nobody2',
    ];
    expect(client.filter(isSlurmClientFault)).toEqual(client);
    expect(slurm.filter(isSlurmClientFault)).toEqual([]);
  });
});
