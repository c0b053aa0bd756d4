import ms from 'ms';

import { InvalidInputError } from './errors.js';

const HMS = /^(\d+):([0-5]\d):([0-5]\d)$/;
const DHMS = /^(\d+)-(\d+):([0-5]\d):([0-5]\d)$/;

/**
 * Parses a duration: Slurm's `hh:mm:ss` / `d-hh:mm:ss`, or an `ms` string (`90s`, `5m`, `2h`, `1d`, `3w`).
 * A bare number is seconds. Throws on anything else, including `1:2` (the original accepted it).
 */
export function parseDuration(text: string): number {
  const s = text.trim();
  let m = HMS.exec(s);
  if (m) return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000;
  m = DHMS.exec(s);
  if (m) return (((Number(m[1]) * 24 + Number(m[2])) * 60 + Number(m[3])) * 60 + Number(m[4])) * 1000;
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  if (/^\d+(\.\d+)?\s*(ms|s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|week|weeks)$/i.test(s)) {
    const v = ms(s as ms.StringValue);
    // Whole milliseconds: Redis (PX, scores) and timers take integers; `1.5ms` is 2.
    if (typeof v === 'number' && Number.isFinite(v)) return Math.round(v);
  }
  throw new Error(`not a duration: ${text}`);
}

/**
 * Longest delay one Node timer can hold (2^31−1 ms, ~24.8 days): beyond it Node fires after 1 ms with a
 * TimeoutOverflowWarning, so a period of 30 days became a loop (a worker with `-hb 30d` sent ~2,000 Redis
 * commands a second). Every setting or flag that becomes a timer's delay is parsed with this maximum.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * parseDuration for user input: what cannot be read, or is longer than `maxMs`, is an InvalidInputError
 * (exit 1) naming the flag, field or variable (`what`) and the forms that work, the same one line for every
 * caller. The default maximum keeps the value an exact integer (Redis refuses `PX 8.64e+24`).
 */
export function parseDurationOr(
  text: string,
  what: string,
  examples = '90s, 10m or hh:mm:ss',
  maxMs = Number.MAX_SAFE_INTEGER,
): number {
  let value: number;
  try {
    value = parseDuration(text);
  } catch {
    throw new InvalidInputError(`invalid ${what} ${JSON.stringify(text)}: use e.g. ${examples}`);
  }
  if (value > maxMs) {
    const why = maxMs === MAX_TIMER_MS ? ' (24.8 days: the longest a timer can wait)' : '';
    throw new InvalidInputError(`invalid ${what} ${JSON.stringify(text)}: at most ${maxMs} ms${why}`);
  }
  return value;
}

/** Formats milliseconds as Slurm's `hh:mm:ss` (hours may exceed 24). */
export function formatHms(totalMs: number): string {
  const total = Math.max(0, Math.ceil(totalMs / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}

/** Milliseconds as seconds for a message, exact to the millisecond: 500 → "0.5 s", 2000 → "2 s". */
export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * Longest task time limit (`--timeout`, a pool's `time` used as one): 365 days. Node's timers hold at most
 * 2^31−1 ms (~24.8 days) and fire at once beyond it, so longer limits are run as a chain of shorter timers
 * (`setLongTimeout`); the maximum only refuses values that are surely typos.
 */
export const MAX_TIME_LIMIT_MS = 365 * 24 * 3600 * 1000;

/** A timer that may be cleared; see `setLongTimeout`. */
export interface LongTimeout {
  clear(): void;
}

/** setTimeout for any delay: a chain of timers, each within Node's limit, that fires once after `ms`. */
export function setLongTimeout(fn: () => void, ms: number): LongTimeout {
  const due = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = due - Date.now();
    if (left <= MAX_TIMER_MS) timer = setTimeout(fn, Math.max(0, left));
    else timer = setTimeout(arm, MAX_TIMER_MS);
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}
