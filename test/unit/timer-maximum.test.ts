import { describe, expect, it } from 'vitest';

import { loadConfig, MAX_MISSED_BEATS, MIN_SLURM_TIME_SLACK_MS } from '../../src/config.js';
import { END_OF_LIFE_MARGIN_MS } from '../../src/tasks/end-of-life.js';
import { parseDurationFlag, workerOptionsFromFlags, type WorkerFlags } from '../../src/cli/worker-cli.js';
import { MAX_TIMER_MS, parseDurationOr } from '../../src/durations.js';
import { InvalidInputError } from '../../src/errors.js';

/**
 * A duration longer than a Node timer can hold (2^31−1 ms, ~24.8 days) fired after 1 ms: `-hb 30d` made an
 * idle worker send ~2,000 Redis commands a second. Every setting and flag used as a timer's delay is refused
 * above it; settings compared with the clock (retention, idle times, retries) are not timers and stay long.
 */
const TIMER_KEYS = [
  'JTM_CONNECT_TIMEOUT',
  'JTM_HEARTBEAT_INTERVAL',
  'JTM_KILL_GRACE',
  'JTM_LOCK_DURATION',
  'JTM_STALLED_INTERVAL',
  'JTM_SAMPLE_INTERVAL',
  'JTM_SWEEP_INTERVAL',
  'JTM_LOG_REPEAT_INTERVAL',
  'JTM_SBATCH_INTERVAL',
  'JTM_SBATCH_BACKOFF',
];
const LONG_KEYS = [
  'JTM_ISALIVE_RETRY',
  'JTM_KILL_RETRY',
  'JTM_FOLLOW_RETRY',
  'JTM_TASK_RETENTION',
  'JTM_POOL_IDLE',
  'JTM_SLURM_IDLE_TIMEOUT',
  'JTM_SLURM_WARNING',
  'JTM_SLURM_TIME_SLACK',
];

const flags = (extra: Partial<WorkerFlags>): WorkerFlags => ({
  worker_type: 'manual',
  pool_name: 'p',
  slots: 1,
  'shutdown-grace': '20s',
  ...extra,
});

describe('timer maximum', () => {
  for (const key of TIMER_KEYS) {
    it(`${key}=30d is refused with one line naming it; 24d is accepted`, () => {
      expect(() => loadConfig({ [key]: '30d' })).toThrow(InvalidInputError);
      expect(() => loadConfig({ [key]: '30d' })).toThrow(
        `invalid ${key} "30d": at most 2147483647 ms (24.8 days: the longest a timer can wait)`,
      );
      expect(() => loadConfig({ [key]: '999999999' })).toThrow(key);
      expect(() => loadConfig({ [key]: `${MAX_TIMER_MS + 1}ms` })).toThrow(key);
      expect(loadConfig({ [key]: `${MAX_TIMER_MS}ms` })).toBeTruthy();
      expect(loadConfig({ [key]: '24d' })).toBeTruthy();
    });
  }
  // Shorter still: limits are held only as often as tasks are watched (adversary 20 F14).
  it('JTM_WATCH_INTERVAL is at most 10 s', () => {
    expect(() => loadConfig({ JTM_WATCH_INTERVAL: '30d' })).toThrow(
      'invalid JTM_WATCH_INTERVAL "30d": at most 10000 ms',
    );
    expect(loadConfig({ JTM_WATCH_INTERVAL: '10s' }).watchIntervalMs).toBe(10_000);
  });
  // Shorter still: every task that leaves a daemon running holds its slot that long (review).
  it('JTM_LEFTOVER_GRACE is at most a minute; 0 is accepted (no grace)', () => {
    expect(() => loadConfig({ JTM_LEFTOVER_GRACE: '2m' })).toThrow(
      'invalid JTM_LEFTOVER_GRACE "2m": at most 60000 ms',
    );
    expect(loadConfig({ JTM_LEFTOVER_GRACE: '1m' }).leftoverGraceMs).toBe(60_000);
    expect(loadConfig({ JTM_LEFTOVER_GRACE: '0' }).leftoverGraceMs).toBe(0);
    expect(loadConfig({}).leftoverGraceMs).toBe(2000);
  });
  for (const key of LONG_KEYS) {
    it(`${key} is not a timer: 30d is accepted, an inexact number is not`, () => {
      expect(() => loadConfig({ [key]: '30d' })).not.toThrow();
      expect(() => loadConfig({ [key]: '99999999999999d' })).toThrow(key);
    });
  }
  it('JTM_SLURM_TIME_SLACK is at least the end-of-life margin (adversary 15 P7: below it every -t submit to a Slurm pool was refused)', () => {
    expect(MIN_SLURM_TIME_SLACK_MS).toBe(END_OF_LIFE_MARGIN_MS);
    expect(loadConfig({ JTM_SLURM_TIME_SLACK: '30s' }).slurmTimeSlackMs).toBe(30_000);
    for (const v of ['0', '29s', '20s'])
      expect(() => loadConfig({ JTM_SLURM_TIME_SLACK: v })).toThrow(
        `JTM_SLURM_TIME_SLACK=${v} must be at least 30 s`,
      );
  });
  it('JTM_MISSED_BEATS has a maximum (its product with the heartbeat is a Redis expiry)', () => {
    expect(loadConfig({ JTM_MISSED_BEATS: String(MAX_MISSED_BEATS) }).missedBeats).toBe(MAX_MISSED_BEATS);
    expect(() => loadConfig({ JTM_MISSED_BEATS: '9007199254740991' })).toThrow('JTM_MISSED_BEATS');
  });
  it('the timer flags (-hb, --sweep-interval, --shutdown-grace) are refused above it', () => {
    expect(() => parseDurationFlag('30d', '-hb', { positive: true })).toThrow(
      'invalid -hb "30d": at most 2147483647 ms (24.8 days: the longest a timer can wait)',
    );
    expect(() => parseDurationFlag('999999999', '--sweep-interval')).toThrow('--sweep-interval');
    expect(parseDurationFlag('24d', '-hb')).toBe(24 * 86_400_000);
    expect(() => workerOptionsFromFlags(flags({ 'shutdown-grace': '30d' }))).toThrow('--shutdown-grace');
  });
  it('--lifetime and --idle-timeout are compared with the clock: as long as an allocation may be', () => {
    const o = workerOptionsFromFlags(flags({ lifetime: '30d', 'idle-timeout': '30d' }), 0);
    expect(o.endOfLife).toBe(30 * 86_400_000);
    expect(o.idleTimeoutMs).toBe(30 * 86_400_000);
  });
  it('parseDurationOr keeps exact integers: whole milliseconds, no value beyond 2^53', () => {
    expect(parseDurationOr('1.5ms', 'x')).toBe(2);
    expect(() => parseDurationOr('99999999999999d', '--wait')).toThrow(
      `invalid --wait "99999999999999d": at most ${Number.MAX_SAFE_INTEGER} ms`,
    );
  });
});
