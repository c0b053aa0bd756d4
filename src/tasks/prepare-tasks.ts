import type { Config } from '../config.js';
import { formatHms, parseDuration } from '../durations.js';
import { InvalidInputError } from '../errors.js';
import { isDynamicSpec } from '../pool-spec.js';
import { resolvePoolCluster } from '../slurm/pool-cluster.js';
import { loadSiteConfig, type SiteConfig } from '../slurm/site-profiles.js';
import { buildTask, type NewTask, type SubmitDefaults, type TaskInput } from './task-spec.js';
import { END_OF_LIFE_MARGIN_MS } from './end-of-life.js';

/**
 * Validates task inputs (a task file's entries, submit's flags, or the programmatic API's objects) into
 * tasks ready to be written: one set of rules for every caller. Throws InvalidInputError (one clear line)
 * before anything is written.
 */
export function prepareTasks(
  inputs: readonly TaskInput[],
  defaults: Omit<SubmitDefaults, 'maxCommandBytes'>,
  config: Config,
): NewTask[] {
  let site: SiteConfig | undefined;
  const loadSite = (): SiteConfig => (site ??= loadSiteConfig(config.siteConfigPath));
  // One defaults object for every task: buildTask derives what comes from it once.
  const taskDefaults = { ...defaults, maxCommandBytes: config.maxCommandBytes };
  const tasks = inputs.map(input => buildTask(input, taskDefaults));
  return tasks.map(t => {
    const poolSpec = resolvePoolCluster(t.poolSpec, loadSite);
    // A copy only when the spec changed (a dynamic pool): a bulk submit of plain tasks copies nothing.
    const task = poolSpec === t.poolSpec ? t : { ...t, poolSpec };
    checkFitsAllocation(task, config);
    return task;
  });
}

/**
 * A task whose time limit is longer than its dynamic pool's allocations would never start on any of them
 * and wait forever: refused at submit, where the user sees why.
 */
function checkFitsAllocation(t: NewTask, config: Config): void {
  if (!isDynamicSpec(t.poolSpec) || t.timeoutMs === undefined || !t.poolSpec.time) return;
  const allocationMs = parseDuration(t.poolSpec.time) + config.slurmTimeSlackMs;
  if (t.timeoutMs > allocationMs - END_OF_LIFE_MARGIN_MS) {
    throw new InvalidInputError(
      `time limit ${formatHms(t.timeoutMs)} does not fit in the allocations of pool ${t.pool} ` +
        `(${t.poolSpec.time} + JTM_SLURM_TIME_SLACK ${formatHms(config.slurmTimeSlackMs)}, less 30 s): raise -t or lower --timeout`,
    );
  }
}
