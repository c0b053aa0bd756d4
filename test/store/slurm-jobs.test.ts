// The pool's Slurm job registry with jobs on another cluster of the site (`id;cluster`, as sbatch --parsable
// names them): followed by the squeue that names the cluster, connected by their workers' SLURM_JOB_ID (which
// carries no cluster), kept by remove-pool while their workers run tasks.
import { describe } from 'vitest';

import {
  markConnected,
  readPoolJobs,
  recordPoolJob,
  syncPoolJobs,
  UNLISTED_GRACE_MS,
} from '../../src/slurm/slurm-jobs.js';
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

  it('keeps a job an squeue omits when sbatch queued it a moment ago or its workers are alive (adversary 25 F4)', async ({
    ctx,
    expect,
  }) => {
    const now = 1_000_000_000;
    await recordPoolJob(ctx, 'q', '40', { state: 'pending', slots: 1, submitted_at: now - 1000 });
    await recordPoolJob(ctx, 'q', '41', { state: 'running', slots: 1, submitted_at: now - 600_000 });
    await recordPoolJob(ctx, 'q', '42', {
      state: 'pending',
      slots: 1,
      submitted_at: now - UNLISTED_GRACE_MS,
    });
    const jobs = await readPoolJobs(ctx, 'q');
    const unlisted: string[] = [];
    // An empty answer of an squeue that exited 0.
    const gone = await syncPoolJobs(ctx, 'q', jobs, new Map(), {
      now,
      liveJobIds: new Set(['41']),
      unlisted,
    });
    expect([...gone.keys()]).toEqual(['42']);
    expect(unlisted).toEqual(['40', '41']);
    expect([...(await readPoolJobs(ctx, 'q')).keys()].sort()).toEqual(['40', '41']);
  });
});
