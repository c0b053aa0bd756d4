import { dirname, join } from 'node:path';

import type { JtmContext } from '../context.js';
import type { Logger } from '../logger.js';
import { appendToRegularFile, replaceFile } from '../planted-names.js';
import type { TaskJobData } from '../tasks/job-data.js';
import { sizeBytes } from '../pool-spec.js';
import { memoryRoom } from './cgroup.js';
import { memAvailable } from './proc-files.js';
import type { WorkerOptions } from './worker-options.js';

// One parser of sizes, beside normaliseMemory (the Slurm batch script reads -mc with it too).
export { sizeBytes } from '../pool-spec.js';

/** `4 GB`, `4.3 GB`, `300 MB`: how limits and peaks read in reasons and logs. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(Math.round((bytes / 1024 ** 3) * 10) / 10).toString()} GB`;
  return `${Math.round(bytes / 1024 ** 2)} MB`;
}

/**
 * The memory limit of each task a dynamic pool's worker runs, when the task names none: the allocation's
 * memory per node shared evenly by the node's workers and their slots (the original capped each worker at
 * mem / nwpn). Undefined when the allocation's memory is unknown.
 */
export function dynamicTaskLimit(
  memPerNode: string,
  workersPerNode: number,
  slots: number,
): number | undefined {
  if (!memPerNode) return undefined;
  return Math.floor(sizeBytes(memPerNode, 'memory (-m)') / Math.max(1, workersPerNode * slots));
}

/**
 * The line JTM appends to the stderr of a task it stopped for memory: it holds both of Cromwell's default
 * `memory-retry-error-keys` (`OutOfMemory`, `Killed`).
 */
export function outOfMemoryLine(reason: string): string {
  return `JTM: OutOfMemory: Killed: ${reason}\n`;
}

/**
 * What a task stopped for memory leaves behind, before its status and Cromwell `rc` are written: the
 * stderr line, in the task's stderr file and (for a Cromwell call) in the call's `execution/stderr`, and
 * the call's `execution/memory_retry_rc` with 0, which is what Cromwell's StandardAsyncExecutionActor reads
 * to decide a retry with more memory (with the `memory_retry_multiplier` workflow option). Best effort: a
 * file that cannot be written is skipped.
 */
export function markOutOfMemory(stderrPath: string, rcFile: string | undefined, reason: string): string[] {
  const line = outOfMemoryLine(reason);
  const written: string[] = [];
  // Only to a regular file already there, through no symlink, waiting on no FIFO (adversary 35 F2).
  const append = (path: string): void => {
    if (appendToRegularFile(path, line)) written.push(path);
  };
  append(stderrPath);
  if (rcFile) {
    const callStderr = join(dirname(rcFile), 'stderr');
    if (callStderr !== stderrPath) append(callStderr);
    const flag = flagMemoryRetry(rcFile);
    if (flag) written.push(flag);
  }
  return written;
}

/**
 * Writes `0` to `memory_retry_rc` next to a Cromwell call's `rc` (its path, or undefined if it cannot). Done
 * as soon as the worker sees the task over its limit: in cgroup v1 the kernel kills one process and the call's
 * script may go on to write `rc` (137) before the worker has killed it; Cromwell checks this flag first.
 */
export function flagMemoryRetry(rcFile: string): string | undefined {
  const path = join(dirname(rcFile), 'memory_retry_rc');
  try {
    // A new file renamed into place: a symlink or FIFO planted at the name is replaced, not written through or
    // waited on (a FIFO froze the worker, adversary 35 F2).
    replaceFile(path, '0\n');
    return path;
  } catch {
    return undefined;
  }
}

/** The limit (bytes) a task runs under: its own `mem_limit`, else its worker's default; undefined: none. */
export function taskMemoryLimit(
  data: Pick<TaskJobData, 'mem_limit'>,
  opts: Pick<WorkerOptions, 'taskMemLimitBytes'>,
): number | undefined {
  if (data.mem_limit) {
    try {
      return sizeBytes(data.mem_limit, 'mem_limit');
    } catch {
      // validated at submit; a record edited by hand falls back to the worker's default
    }
  }
  return opts.taskMemLimitBytes;
}

/**
 * How long one reading of MemAvailable stands for the next task starts: a worker starting hundreds of short
 * tasks a second need not read /proc/meminfo for each, and memory a task allocates takes longer than this
 * to show anyway.
 */
const MEM_AVAILABLE_TTL_MS = 100;
let lastReading: { at: number; bytes: number | undefined; room: ReturnType<typeof memoryRoom> } | undefined;

/**
 * Why this node cannot take another task now (its MemAvailable is below the margin), or undefined. The
 * worker keeps itself and the tasks it runs alive rather than start one more on a node about to swap or OOM.
 */
export function memoryTooLow(marginBytes: number, now = Date.now()): string | undefined {
  if (marginBytes <= 0) return undefined;
  if (!lastReading || now - lastReading.at >= MEM_AVAILABLE_TTL_MS || now < lastReading.at)
    lastReading = { at: now, bytes: memAvailable(), room: memoryRoom() };
  const avail = lastReading.bytes;
  if (avail !== undefined && avail < marginBytes)
    return `node MemAvailable ${formatBytes(avail)} is below JTM_MEM_AVAILABLE_MARGIN ${formatBytes(marginBytes)}`;
  // In a cgroup with a limit (a Slurm job's), its room too: the margin, or a tenth of the limit where that is
  // less (a 512 MB margin would keep a 500 MB allocation from ever starting a task).
  const room = lastReading.room;
  const floor = room && Math.min(marginBytes, room.limitBytes / 10);
  if (room && floor !== undefined && room.roomBytes < floor)
    return `the worker's cgroup has ${formatBytes(room.roomBytes)} left of its ${formatBytes(room.limitBytes)} limit, below ${formatBytes(floor)} (JTM_MEM_AVAILABLE_MARGIN, or a tenth of the limit)`;
  return undefined;
}

/**
 * Why a task with a memory limit of `limitBytes` does not fit where this worker runs now, or undefined: its
 * cgroup (a Slurm job's) has less room than the task may use, while other tasks hold the rest. Not when the
 * limit is larger than the cgroup's whole limit (it would wait for ever: it runs, and the kernel decides), nor
 * when nothing else runs here (the room is as large as it gets).
 */
export function taskDoesNotFit(limitBytes: number, othersRunning: number): string | undefined {
  if (othersRunning === 0) return undefined;
  const room = memoryRoom();
  if (!room || limitBytes > room.limitBytes || limitBytes <= room.roomBytes) return undefined;
  return `its memory limit ${formatBytes(limitBytes)} is more than the ${formatBytes(room.roomBytes)} left in the worker's cgroup (limit ${formatBytes(room.limitBytes)}) beside ${othersRunning} running task${othersRunning === 1 ? '' : 's'}`;
}

/** The files a task stopped for memory leaves (see markOutOfMemory), written before its status and rc. */
export async function recordOutOfMemory(
  ctx: JtmContext,
  log: Logger,
  data: TaskJobData,
  stderrPath: string,
  reason: string,
): Promise<void> {
  const rcFile = await ctx.tasks.get(data.id).then(
    r => r?.rc_file,
    () => undefined,
  );
  const written = markOutOfMemory(stderrPath, rcFile, reason);
  log.warn({ task: data.id, files: written }, reason);
}
