import { DURATION_BUCKETS, WAIT_BUCKETS } from '../redis/scripts.js';

/**
 * Counters of tasks submitted and finished, kept in Redis so that any number of managers and dashboards
 * export the same totals. They are written by the Lua scripts that create or end a task (src/redis/scripts.ts:
 * create-task(s) count `stats:submitted`; every path to a final status goes through `finalize`, which counts
 * `stats:finished` and the histograms), in the same atomic step as the change: each task is counted once, and
 * no extra round trip is spent on it.
 *
 * Histograms: `<pool>:<i>` counts the observations in bucket i alone (the smallest bound ≥ value;
 * i = bounds.length for +Inf), `<pool>:sum_ms` their sum in milliseconds (an integer); the exporter accumulates,
 * and adds `<pool>:sum` (seconds), what an earlier version counted.
 */
export { DURATION_BUCKETS, WAIT_BUCKETS };
