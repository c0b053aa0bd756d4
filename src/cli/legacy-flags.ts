import { Flags } from '@oclif/core';

/**
 * `-cl` on the original's check-worker, check-manager and remove-pool: accepted so that its command lines
 * still run, and ignored (these commands act on every cluster's pools alike).
 */
export const ignoredClusterFlag = {
  cluster: Flags.string({ description: 'ignored; kept for the original command line (-cl)' }),
};
