import type { Config } from '../config.js';
import { formatHms, parseDuration } from '../durations.js';
import { resolve } from 'node:path';

import { InvalidInputError } from '../errors.js';
import { optionalString } from '../fields.js';
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
  /** Names the i-th input in an error's message (the API: `tasks[2]`); none: the message alone. */
  nameOf?: (i: number) => string,
): NewTask[] {
  let site: SiteConfig | undefined;
  const loadSite = (): SiteConfig => (site ??= loadSiteConfig(config.siteConfigPath));
  // Relative to the submitter's directory, as output_dir and stdout are: stored relative, it was taken
  // relative to the worker's own directory, and one submit ran in one place and wrote in another (adversary 22
  // M1). A NUL could never be a directory: refused here, not when the task fails to start.
  const cwd = optionalString(defaults.cwd, 'the working directory');
  if (cwd === undefined) throw new InvalidInputError('the working directory must be given (cwd)');
  // One defaults object for every task: buildTask derives what comes from it once.
  const taskDefaults = { ...defaults, cwd: resolve(cwd), maxCommandBytes: config.maxCommandBytes };
  const tasks: NewTask[] = [];
  // An index loop, not map: map skips an array's holes, and a hole left a null among the ids (adversary 22 L3).
  for (let i = 0; i < inputs.length; i++) {
    try {
      const t = buildTask(inputs[i] as TaskInput, taskDefaults);
      const poolSpec = resolvePoolCluster(t.poolSpec, loadSite);
      // A copy only when the spec changed (a dynamic pool): a bulk submit of plain tasks copies nothing.
      const task = poolSpec === t.poolSpec ? t : { ...t, poolSpec };
      checkFitsAllocation(task, config);
      tasks.push(task);
    } catch (err) {
      if (nameOf && err instanceof InvalidInputError)
        throw new InvalidInputError(`${nameOf(i)}: ${err.message}`);
      throw err;
    }
  }
  return tasks;
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
