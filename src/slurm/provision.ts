import type { JtmContext } from '../context.js';

/** What one provisioning pass did (the manager's sweep logs it). */
export interface ProvisionReport {
  submitted: number;
  failedPools: string[];
}

/**
 * Called by the manager's sweep each tick: keeps enough Slurm allocations for each dynamic pool's queued
 * and running work. (Implemented by the Slurm pools work; until then no pool is provisioned.)
 */
export async function provisionDynamicPools(ctx: JtmContext, now: number): Promise<ProvisionReport> {
  void ctx;
  void now;
  return { submitted: 0, failedPools: [] };
}

/** Cancels (scancel) every Slurm allocation of a pool; resolves with the job ids cancelled. */
export async function cancelPoolAllocations(ctx: JtmContext, pool: string): Promise<string[]> {
  void ctx;
  void pool;
  return [];
}
