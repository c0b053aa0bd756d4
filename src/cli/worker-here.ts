/**
 * Whether `jtm worker` runs a worker in this process: `-wt dynamic` without a Slurm job id (-j) asks Slurm
 * for an allocation instead, whose batch script then runs the workers.
 */
export function runsWorkerHere(flags: { worker_type?: string; slurm_job_id?: number }): boolean {
  return !(flags.worker_type === 'dynamic' && !flags.slurm_job_id);
}
