// The pool's Slurm job registry with jobs on another cluster of the site (`id;cluster`, as sbatch --parsable
// names them): followed by the squeue that names the cluster, connected by their workers' SLURM_JOB_ID (which
// carries no cluster), kept by remove-pool while their workers run tasks.
import { describe } from 'vitest';

import { markConnected, readPoolJobs, recordPoolJob, syncPoolJobs } from '../../src/slurm/slurm-jobs.js';
import { it } from '../helpers/store.js';

describe.concurrent('Slurm job registry, jobs on other clusters', () => {
  it('keeps a remote job squeue -M lists, and marks it connected by its worker’s job id', async ({
    ctx,
    expect,
  }) => {
    const job = { state: 'pending' as const, slots: 1, submitted_at: 1 };
    await recordPoolJob(ctx, 'p', '34;dori', job);
    await recordPoolJob(ctx, 'p', '35', job);
    const jobs = await readPoolJobs(ctx, 'p');
    const gone = await syncPoolJobs(ctx, 'p', jobs, new Map([['34;dori', 'running']]));
    expect([...gone.keys()]).toEqual(['35']);
    expect(await markConnected(ctx, 'p', jobs, new Set(['34']))).toBe(1);
    expect(await readPoolJobs(ctx, 'p')).toEqual(
      new Map([['34;dori', { ...job, state: 'running', connected: true }]]),
    );
  });
});
