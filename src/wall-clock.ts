/**
 * The wall clock this process stamps records with (queued, started and ended times, history entries, heartbeats).
 * A worker on a node whose clock is off from Redis's stamps with Redis's time instead: its heartbeat reads Redis's
 * `TIME` and sets the offset here. A worker 30 s behind recorded `started_at` before the submit's `queued_at`,
 * and the history (whose entries keep their order) showed its 1 s run starting and ending at the same instant
 * (adversary 14 F6). The command-line tools and the manager, which usually run where Redis's clock is set from
 * (a login or service node with NTP), keep their own clock: their offset stays 0.
 */
let offsetMs = 0;

/**
 * An offset is applied from this size on: NTP keeps nodes within milliseconds, and a reading is only as exact as
 * half its round trip; stamps stay the node's own, as before, unless the clocks are really apart.
 */
export const CORRECTED_FROM_MS = 250;
/** ...and dropped again only below this, so that a node about 250 ms off does not flip at every reading. */
const UNCORRECTED_BELOW_MS = 150;
/**
 * A reading that moves the applied offset by less than this is not taken: its error is up to half its round
 * trip, and an offset taken from every reading jittered by a millisecond or two at each beat (each change
 * logged, and a task's start and end stamped with different offsets).
 */
const SETTLED_WITHIN_MS = 50;
/** A reading whose round trip took longer than this (a loaded node, a slow Redis) says too little: ignored. */
const MAX_ROUND_TRIP_MS = 100;

/** Now, in epoch ms, on the clock records are stamped with. */
export function wallNow(): number {
  return Date.now() + offsetMs;
}

/** The offset applied (ms to add to the node's clock), 0 when none. */
export function wallClockOffsetMs(): number {
  return offsetMs;
}

/**
 * One reading of Redis's clock (`redisMs`, epoch ms) by a command sent at `sentMs` and answered at
 * `receivedMs` (the node's clock). Returns the offset now applied, or undefined when the reading was not usable.
 */
export function observeRedisClock(redisMs: number, sentMs: number, receivedMs: number): number | undefined {
  const roundTrip = receivedMs - sentMs;
  if (!Number.isFinite(redisMs) || roundTrip < 0 || roundTrip > MAX_ROUND_TRIP_MS) return undefined;
  const measured = Math.round(redisMs - (sentMs + receivedMs) / 2);
  const size = Math.abs(measured);
  if (offsetMs === 0) {
    if (size >= CORRECTED_FROM_MS) offsetMs = measured;
  } else if (size < UNCORRECTED_BELOW_MS) {
    offsetMs = 0;
  } else if (Math.abs(measured - offsetMs) >= SETTLED_WITHIN_MS) {
    offsetMs = measured;
  }
  return offsetMs;
}
