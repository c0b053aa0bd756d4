/**
 * Milliseconds on the node's monotonic clock (CLOCK_MONOTONIC: one clock for every process of the node, never
 * stepped when the wall clock is). A worker's lease, the start deadline its pty host checks, and the watchdogs
 * between them are measured on it: on the wall clock, an NTP step of 10 s forward made a worker that had just
 * renewed its lease think it lapsed and stop every running task, and a step back made the host refuse every
 * start (adversary 8 I4). What is recorded for people (started_at, last_beat) stays wall time.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}
