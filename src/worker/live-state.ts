import type { WorkerState } from './heartbeat.js';

/**
 * What changes over a worker's life, in one place: startWorker's closures (and the parts it hands them to: its
 * beat, its housekeeping) read and write it here, and the parts made after the functions that clean them up
 * (control, timers, leftover sweeps) are recorded here once they exist.
 */
export class LiveState {
  /** running → draining (its end of life is near) → stopping. */
  phase: WorkerState = 'running';
  /** When a task last started or ended: the idle timeout counts from it. */
  lastBusy = Date.now();
  /** The stop under way, once stop() has been called. */
  stopping: Promise<void> | undefined;
  /** The shutdown grace a plain stop arms (none with `finish`, until a later plain stop). */
  grace: NodeJS.Timeout | undefined;
  /** The heartbeat in flight: one at a time, and a caller that needs a fresh lease waits for it. */
  beatInFlight: Promise<void> | undefined;
  resolveStopped: () => void = () => {};
  /** The control subscription, from the moment it is asked for: a stop during its SUBSCRIBE still closes it. */
  control: Promise<{ close(): Promise<unknown> }> | undefined;
  leftovers: { stop(): void } | undefined;
  /** The log dir's pruning under way (log-dir-prune.ts): one at a time. */
  pruning: Promise<unknown> | undefined;
  /** The beat tried again soon after one a Redis refusing writes for now refused (at most one pending). */
  quickBeat: NodeJS.Timeout | undefined;
  /** When Redis began refusing this worker's credentials (Date.now()), until a beat passes again. */
  credentialsRefusedSince: number | undefined;
  /** Heartbeat, self-fencing, life and housekeeping timers: cleared by stop(). */
  readonly timers: NodeJS.Timeout[] = [];
  /** Stopped through the handle: a signal (SIGTERM, SIGHUP, Slurm's end), not its own idle or life timer. */
  signalled = false;
  /**
   * The most runs at once since the last beat: the dashboard's Busy. The running list is an instant's, and with
   * tasks of a few milliseconds it mostly fell between two: a worker busy on all 8 slots read "0 / 8" every other
   * beat (adversary 21 F6).
   */
  busyPeak = 0;
}
