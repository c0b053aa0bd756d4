import { randomBytes } from 'node:crypto';

import type { Job } from 'bullmq';

import type { Fence } from '../store/task-store.js';
import type { TaskJob } from '../tasks/job-data.js';
import type { TaskRun } from './task-run.js';

/** How long a run's end keeps its job from being taken for a lost fetch (its completion is on its way). */
const ENDED_MEMORY_MS = 10_000;

/**
 * One execution of a task on this worker, with the job (and lock token) it is now delivered under:
 * BullMQ's stalled check may hand the job back (its lock lapsed while Redis was unreachable) while the
 * task still runs here; the new delivery attaches to this execution instead of starting a second copy,
 * and the result is recorded once, with the newest token. The run exists once the task is claimed (its
 * spec comes from the claim); the run token, which the claim records, exists from the start.
 */
export interface Execution {
  readonly id: number;
  readonly fence: Fence;
  run?: TaskRun;
  job: Job<TaskJob>;
  token: string | undefined;
  done?: Promise<unknown>;
  /**
   * Its job was moved to the delayed set (defer, leaveForLater): a later delivery of the job is a new
   * execution, not this one's. Attached to this one, it took this one's DelayedError for its own, left the
   * job active under its lock, and the task waited for the stalled check (≈ 45 s) to be run at all.
   */
  left?: boolean;
}

/** The executions of a worker by task id (one at a time per task), and the runs that ended here a moment ago. */
export class Executions {
  private readonly byTask = new Map<number, Execution>();
  /** Runs ended in the last seconds (task id → when), pruned as it grows: their jobs are being finished. */
  private readonly endedHere = new Map<number, number>();

  constructor(private readonly workerId: string) {}

  get size(): number {
    return this.byTask.size;
  }

  get(id: number): Execution | undefined {
    return this.byTask.get(id);
  }

  /** A new execution of task `id` under a fresh run token (start-task records it; the task sees it as JTM_TASK_TOKEN). */
  begin(id: number, job: Job<TaskJob>, token: string | undefined): Execution {
    const exec: Execution = {
      id,
      fence: { workerId: this.workerId, runToken: randomBytes(12).toString('hex') },
      job,
      token,
    };
    this.byTask.set(id, exec);
    return exec;
  }

  /** Forgets `exec`, unless a later execution of its task has replaced it. */
  forget(exec: Execution): void {
    if (this.byTask.get(exec.id) === exec) this.byTask.delete(exec.id);
  }

  /** The run of task `id` ended here: its job is finished by BullMQ a moment later, not a lost fetch meanwhile. */
  ended(id: number): void {
    const now = Date.now();
    // Oldest first (insertion order): pruned from the front as it goes.
    for (const [k, t] of this.endedHere) {
      if (now - t <= ENDED_MEMORY_MS) break;
      this.endedHere.delete(k);
    }
    this.endedHere.delete(id);
    this.endedHere.set(id, now);
  }

  /** Whether task `id` runs here, or its run ended here a moment ago (lost-fetches.ts: not a lost fetch). */
  runsHere(id: number): boolean {
    if (this.byTask.has(id)) return true;
    const at = this.endedHere.get(id);
    return at !== undefined && Date.now() - at <= ENDED_MEMORY_MS;
  }

  /** The run tokens of the executions: their processes are this worker's, not leftovers of lost runs. */
  tokens(): string[] {
    return [...this.byTask.values()].map(e => e.fence.runToken);
  }
}
