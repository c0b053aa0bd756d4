import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

import { InvalidInputError, PipeNotWrittenError } from './errors.js';
import { MAX_TIMER_MS, parseDuration, parseDurationOr } from './durations.js';
import { closestName, dropUndefined } from './fields.js';
import { readInputFile } from './input-file.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** Everything JTM reads from its environment, resolved once. Durations are milliseconds. */
export interface Config {
  /** Redis URL (redis:// or rediss://, user:password@ for ACL users); undefined → 127.0.0.1:6379. */
  readonly redisUrl: string | undefined;
  /** PEM files for rediss:// (CA to trust; client certificate and key for mutual TLS). */
  readonly redisTlsCa: string | undefined;
  readonly redisTlsCert: string | undefined;
  readonly redisTlsKey: string | undefined;
  /** Prefix of every key and queue; the braces make it a Redis Cluster hash tag. */
  readonly prefix: string;
  /**
   * How many Redis Cluster shards the site spreads its pools over (docs/scaling.md); 1 = one namespace,
   * the prefix itself. Fixed for the life of a site: ids encode their shard (id mod shards).
   */
  readonly shards: number;
  readonly logLevel: LogLevel;
  readonly logDir: string;
  /** How long a CLI command waits for Redis before giving up, counted from the start of the process. */
  readonly connectTimeoutMs: number;
  /** How long isalive keeps retrying a failing Redis before answering `unknown`. */
  readonly isaliveRetryMs: number;
  /** How long kill keeps retrying a failing Redis before it gives up (exit 255). */
  readonly killRetryMs: number;
  /** How long submit retries an unreachable Redis when nothing of the submit can have been committed. */
  readonly submitRetryMs: number;
  /**
   * How long a follower of a task's output (`jtm logs --follow`, followLogs) that lost Redis keeps reconnecting
   * before it gives up (exit 255); it resumes where it stopped, every byte once.
   */
  readonly followRetryMs: number;
  readonly heartbeatIntervalMs: number;
  /** A worker is dead after this many heartbeats in a row are missing. */
  readonly missedBeats: number;
  /** How long a final task record (with its events and samples) is kept. */
  readonly taskRetentionMs: number;
  /** How many times a task whose worker died is re-queued before it ends lostconnection. */
  readonly taskRetries: number;
  /** Time between SIGTERM and SIGKILL when a task tree is killed. */
  readonly killGraceMs: number;
  /**
   * How long what a task left running when it exited may take to end by itself before it is killed (a `tee`
   * still copying the last of the output, as Cromwell's script leaves two).
   */
  readonly leftoverGraceMs: number;
  /**
   * BullMQ job lock of a running task, renewed by its worker every half period. When a worker dies, its
   * tasks go back to the queue once the lock has expired and a live worker's stalled check (every
   * `stalledIntervalMs`) sees it: their sum bounds how long a killed worker's tasks wait to be re-run.
   */
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly sampleIntervalMs: number;
  /**
   * `auto`: each task in its own cgroup where the worker may make one (kernel accounting and memory limits),
   * /proc sampling elsewhere; `procfs`: /proc sampling always.
   */
  readonly accounting: 'auto' | 'procfs';
  /** How often tasks without a cgroup, and tasks with a memory limit, are watched. */
  readonly watchIntervalMs: number;
  /** A worker starts no task while the node's MemAvailable is below this (bytes). */
  readonly memAvailableMarginBytes: number;
  /**
   * The OOM score adjustment a task starts with (0–1000; 0 leaves what it inherits): when the memory where
   * the worker runs (a Slurm job's cgroup, the node) runs out, the kernel kills a task, not the worker.
   */
  readonly taskOomScoreAdj: number;
  readonly sweepIntervalMs: number;
  /** Pools with no worker and no task for this long are expired by the manager. */
  readonly poolIdleMs: number;
  /**
   * How much of a task's stdout its worker keeps in Redis for `jtm logs` from any host: the last this many
   * bytes (the stdout file keeps everything).
   */
  readonly outputTailBytes: number;
  /**
   * How much of that copy a task keeps once it has ended (JTM_OUTPUT_KEEP_BYTES, default 64 KiB, 0 = none): Redis
   * holds it for the record's whole retention, in memory, while the stdout file keeps everything.
   */
  readonly outputKeepBytes: number;
  /** Longest command accepted by submit, in bytes. */
  readonly maxCommandBytes: number;
  /**
   * A log line that repeats on its own (Redis or BullMQ connection errors while Redis is down, stray library
   * output) is logged once per kind in this window; the count of the others goes with the next one.
   */
  readonly logRepeatIntervalMs: number;
  /** Site profiles (clusters) for Slurm pools; undefined → the built-in `local` only. */
  readonly siteConfigPath: string | undefined;
  readonly dashboardHost: string;
  readonly dashboardPort: number;
  readonly dashboardUser: string | undefined;
  readonly dashboardPassword: string | undefined;
  /** `jtm manager`'s Prometheus endpoint: off unless a port is given (flag or JTM_METRICS_PORT). */
  readonly metricsHost: string;
  readonly metricsPort: number | undefined;
  /** The jtm command written into Slurm batch scripts (absolute path of this installation by default). */
  readonly jtmCommand: string | undefined;
  /** Least time between two sbatch calls of the manager (sites reject bursts). */
  readonly sbatchIntervalMs: number;
  /** First wait after a failed sbatch; it doubles with each failure in a row. */
  readonly sbatchBackoffMs: number;
  /** After this many failed sbatch in a row, the pool's queued tasks fail with sbatch's message. */
  readonly sbatchMaxFailures: number;
  /** Workers of manager-provisioned allocations exit after this long without a task. */
  readonly slurmIdleTimeoutMs: number;
  /** Slurm's SIGUSR1 warning before walltime (workers drain); at most half the wall time. */
  readonly slurmWarningMs: number;
  /** Added to a pool's time for its allocations, so that a task as long as the pool time still fits. */
  readonly slurmTimeSlackMs: number;
}

/**
 * The longest command that can run: it is passed as one argument (`bash -c CMD`) after the worker's preamble
 * of about 800 bytes (task-argv.ts), and Linux refuses an argument of MAX_ARG_STRLEN = 131072 bytes or more, its
 * terminating NUL included (execve: E2BIG). At 131,071 the last ~800 bytes of the range were accepted by submit
 * and failed at every start (adversary 15 P5).
 */
export const MAX_COMMAND_BYTES = 130_000;

/**
 * The least JTM_SLURM_TIME_SLACK: the worker's end-of-life margin (END_OF_LIFE_MARGIN_MS, tasks/end-of-life.ts;
 * a unit test keeps the two equal), below which no task of a pool whose -t is its tasks' limit fits.
 */
export const MIN_SLURM_TIME_SLACK_MS = 30_000;

/**
 * The shortest JTM_TASK_RETENTION: a task's end (status, isalive, logs, the dashboard's last hour of ends) must
 * still be there when Cromwell or a user asks after it, and a submit's commit key, kept as long, must outlive the
 * manager's reconciliation of its records. JTM_TASK_RETENTION=0 deleted a result the moment its task ended: status
 * then said invalidtask, as for an id that never existed (adversary 34 M6).
 */
export const MIN_TASK_RETENTION_MS = 3_600_000;

/** Most shards a site may have: a Redis Cluster has 16,384 slots, far more masters than this is unheard of. */
export const MAX_SHARDS = 256;

/**
 * The shortest heartbeat period (JTM_HEARTBEAT_INTERVAL, `jtm worker -hb`). A worker stops its tasks when a beat
 * has not succeeded for most of its lease (self-fencing, docs/reliability.md), and a beat is a Redis round trip
 * that a loaded node delays by hundreds of ms: at 5 or 50 ms every beat was "late", the worker stopped its tasks
 * and took them again, forever. 500 ms is what the test suite runs at on a loaded 2-core machine.
 */
export const MIN_HEARTBEAT_MS = 500;
/**
 * The longest heartbeat period: a dead worker's tasks wait for its lease (period × missed beats) before another
 * worker takes them over, and `-hb 20d` made that 60 days, accepted without a word.
 */
export const MAX_HEARTBEAT_MS = 10 * 60_000;
/**
 * The fewest missed beats before a worker is dead: the lease (interval × missed beats) must leave one whole
 * late beat before the fencing margin (about one interval), or a worker would stop its tasks between two beats.
 */
export const MIN_MISSED_BEATS = 3;

/**
 * Refuses lease settings a worker cannot keep (see above). Checked by the processes that use them (a worker, a
 * manager), not by every command: `isalive` must not answer "dead" (exit 1) because of a setting it never uses.
 * `hbFlag`: the worker's `-hb` text, named in the error instead of the variable.
 */
export function checkLeaseSettings(config: Config, hbFlag?: string): void {
  if (config.heartbeatIntervalMs < MIN_HEARTBEAT_MS) {
    const what =
      hbFlag !== undefined ? `-hb ${hbFlag}` : `JTM_HEARTBEAT_INTERVAL=${config.heartbeatIntervalMs}ms`;
    throw new InvalidInputError(
      `${what} is too short: the heartbeat must be at least ${MIN_HEARTBEAT_MS}ms (a worker whose beats cannot keep its lease stops and restarts its tasks)`,
    );
  }
  if (config.heartbeatIntervalMs > MAX_HEARTBEAT_MS) {
    const what =
      hbFlag !== undefined ? `-hb ${hbFlag}` : `JTM_HEARTBEAT_INTERVAL=${config.heartbeatIntervalMs}ms`;
    throw new InvalidInputError(
      `${what} is too long: the heartbeat must be at most 10m (a dead worker's tasks wait ${config.missedBeats} beats before another worker takes them over)`,
    );
  }
  if (config.missedBeats < MIN_MISSED_BEATS) {
    throw new InvalidInputError(
      `JTM_MISSED_BEATS=${config.missedBeats} must be at least ${MIN_MISSED_BEATS} (a worker stops its tasks when its beats are late for about one interval: with fewer, one late beat would)`,
    );
  }
}

/**
 * Most missed heartbeats before a worker is dead: the product with the heartbeat period is a Redis expiry,
 * which must stay an exact integer (JTM_MISSED_BEATS had no maximum).
 */
export const MAX_MISSED_BEATS = 1000;

/** `maxMs` of the durations that are compared with the clock (deadlines, ages) or handed to Redis or Slurm. */
const NOT_A_TIMER = Number.MAX_SAFE_INTEGER;

/**
 * Every key loadConfig reads, as `.env.example` lists them (a unit test compares the two), plus the alias
 * JTM_REDIS_URL. A `--config` file may hold only these: a typo (`JTM_PREFX`) fell back to the default
 * silently, and a Cromwell stanza whose isalive used the wrong prefix answered "dead" for every running call.
 */
export const CONFIG_KEYS = [
  'REDIS_URL',
  'JTM_REDIS_URL',
  'JTM_REDIS_TLS_CA',
  'JTM_REDIS_TLS_CERT',
  'JTM_REDIS_TLS_KEY',
  'JTM_PREFIX',
  'JTM_SHARDS',
  'JTM_LOG_LEVEL',
  'JTM_LOG_DIR',
  'JTM_CONNECT_TIMEOUT',
  'JTM_ISALIVE_RETRY',
  'JTM_KILL_RETRY',
  'JTM_SUBMIT_RETRY',
  'JTM_FOLLOW_RETRY',
  'JTM_HEARTBEAT_INTERVAL',
  'JTM_MISSED_BEATS',
  'JTM_TASK_RETENTION',
  'JTM_TASK_RETRIES',
  'JTM_KILL_GRACE',
  'JTM_LEFTOVER_GRACE',
  'JTM_LOCK_DURATION',
  'JTM_STALLED_INTERVAL',
  'JTM_SAMPLE_INTERVAL',
  'JTM_ACCOUNTING',
  'JTM_WATCH_INTERVAL',
  'JTM_MEM_AVAILABLE_MARGIN',
  'JTM_TASK_OOM_SCORE_ADJ',
  'JTM_SWEEP_INTERVAL',
  'JTM_POOL_IDLE',
  'JTM_OUTPUT_TAIL_BYTES',
  'JTM_OUTPUT_KEEP_BYTES',
  'JTM_MAX_COMMAND_BYTES',
  'JTM_LOG_REPEAT_INTERVAL',
  'JTM_SITE_CONFIG',
  'JTM_COMMAND',
  'JTM_SBATCH_INTERVAL',
  'JTM_SBATCH_BACKOFF',
  'JTM_SBATCH_MAX_FAILURES',
  'JTM_SLURM_IDLE_TIMEOUT',
  'JTM_SLURM_WARNING',
  'JTM_SLURM_TIME_SLACK',
  'JTM_DASHBOARD_HOST',
  'JTM_DASHBOARD_PORT',
  'JTM_DASHBOARD_USER',
  'JTM_DASHBOARD_PASSWORD',
  'JTM_METRICS_HOST',
  'JTM_METRICS_PORT',
] as const;

export type ConfigKey = (typeof CONFIG_KEYS)[number];

const KNOWN_KEYS: ReadonlySet<string> = new Set(CONFIG_KEYS);

export type Env = Readonly<Record<string, string | undefined>>;

/** The settings file loadConfig reads for these arguments (`configFile`, else JTM_CONFIG_FILE), if any. */
export function configFileOf(env: Env = process.env, configFile?: string): string | undefined {
  return configFile ?? (env['JTM_CONFIG_FILE'] || undefined);
}

/** Resolves the configuration; the only reader of the process environment. */
export function loadConfig(
  env: Env = process.env,
  overrides: Partial<Config> = {},
  configFile?: string,
  /** Settings read as unset (their defaults): see loadConfigUsing. */
  unset: ReadonlySet<string> = new Set(),
): Config {
  // An empty variable is unset, so the file's value stands: a wrapper whose own source is unset exports
  // `JTM_PREFIX=` (a systemd Environment= line, a Cromwell template), and taking it as "the default" sent
  // isalive and kill to another deployment's prefix (its task of the same id was killed) or to localhost.
  const fromEnv = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const merged = { ...readConfigFile(configFileOf(env, configFile), pipeWaitMs(env)), ...fromEnv };
  const get = (key: ConfigKey): string | undefined => {
    if (unset.has(key)) return undefined;
    const v = merged[key];
    return v === undefined || v === '' ? undefined : v;
  };
  // A duration is a timer's delay unless it says otherwise (`maxMs`): at most MAX_TIMER_MS.
  const duration = (key: ConfigKey, fallback: string, positive = false, maxMs = MAX_TIMER_MS): number => {
    const raw = get(key) ?? fallback;
    const ms = parseDurationOr(raw, key, '5s, 2m or 00:10:00', maxMs);
    // Periods and timeouts of 0 cannot work (a timer firing in a loop, a connection never given time).
    if (positive && ms <= 0) throw new InvalidInputError(`${key}=${raw} must be longer than 0`);
    return ms;
  };
  const atLeast = (key: ConfigKey, ms: number, minMs: number, why: string): number => {
    if (ms < minMs)
      throw new InvalidInputError(`${key}=${get(key) ?? ''} must be at least ${minMs / 1000} s${why}`);
    return ms;
  };
  const integer = (
    key: ConfigKey,
    fallback: number,
    min = 0,
    max = Number.MAX_SAFE_INTEGER,
    why = '',
  ): number => {
    const raw = get(key);
    if (raw === undefined) return fallback;
    const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`;
      throw new InvalidInputError(`${key}=${raw} must be an integer ${range}${why}`);
    }
    return n;
  };
  const size = (key: ConfigKey, fallback: string): number => {
    const raw = get(key) ?? fallback;
    const m = /^(\d+(?:\.\d+)?)\s*([KMGT])?B?$/i.exec(raw.trim());
    if (!m) throw new InvalidInputError(`${key}=${raw} is not a size (e.g. 512M, 2G; a bare number is GB)`);
    const unit = { K: 1, M: 2, G: 3, T: 4 }[(m[2] ?? 'G').toUpperCase() as 'K' | 'M' | 'G' | 'T'];
    const bytes = Math.round(Number(m[1]) * 1024 ** unit);
    // Beyond 2^53 bytes (8 PiB) the figure is not exact, and was handed to Slurm workers as "1e+23K", a size
    // they refused.
    if (!Number.isSafeInteger(bytes))
      throw new InvalidInputError(`${key}=${raw} is too large (it must be under 8 PiB, 8192T)`);
    return bytes;
  };
  // Blanks are not a credential: a password of one space let a dashboard on 0.0.0.0 start as if protected.
  const credential = (key: ConfigKey): string | undefined => {
    const raw = get(key);
    if (raw !== undefined && raw.trim() === '') {
      throw new InvalidInputError(`${key} is blank: set a real value, or leave it empty (unset)`);
    }
    return raw;
  };
  // The process's own HOME, not a config file's (a file holds JTM's keys only).
  const home = env['HOME'] || homedir();
  // A path setting: `~` and `~/…` are the home directory, as a shell would make them (.env.example's own
  // JTM_LOG_DIR=~/.jtm/log, used as a --config file, wrote every task's output under a directory named `~` in
  // the worker's working directory), and a relative path is made absolute here, once: the records, the batch
  // scripts and every reader then see one path.
  const path = (key: ConfigKey): string | undefined => {
    const raw = get(key);
    if (raw === undefined) return undefined;
    const expanded = raw === '~' ? home : raw.startsWith('~/') ? join(home, raw.slice(2)) : raw;
    if (expanded.startsWith('~')) {
      throw new InvalidInputError(`${key}=${raw}: only ~ or ~/… (this user's home) can be expanded`);
    }
    return resolve(expanded);
  };
  const logLevel = (get('JTM_LOG_LEVEL') ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new InvalidInputError(`JTM_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  }
  // JTM_REDIS_URL is an alias: two different URLs are ambiguous (which server holds the tasks?), refused.
  // Blanks around a URL are a copy-paste's, as around every other setting (adversary 15 P11: refused as "not a URL").
  const redisUrl = get('REDIS_URL')?.trim() || undefined;
  const redisUrlAlias = get('JTM_REDIS_URL')?.trim() || undefined;
  if (redisUrl !== undefined && redisUrlAlias !== undefined && redisUrl !== redisUrlAlias) {
    throw new InvalidInputError(
      'REDIS_URL and JTM_REDIS_URL are both set, to different URLs: set one (JTM_REDIS_URL is an alias of REDIS_URL)',
    );
  }
  const prefix = get('JTM_PREFIX') ?? DEFAULT_PREFIX;
  const config: Config = {
    redisUrl: redisUrl ?? redisUrlAlias,
    redisTlsCa: path('JTM_REDIS_TLS_CA'),
    redisTlsCert: path('JTM_REDIS_TLS_CERT'),
    redisTlsKey: path('JTM_REDIS_TLS_KEY'),
    prefix,
    shards: integer('JTM_SHARDS', 1, 1, MAX_SHARDS),
    logLevel,
    logDir: path('JTM_LOG_DIR') ?? defaultLogDir(home, prefix),
    connectTimeoutMs: duration('JTM_CONNECT_TIMEOUT', DEFAULT_CONNECT_TIMEOUT, true),
    isaliveRetryMs: duration('JTM_ISALIVE_RETRY', '10s', false, NOT_A_TIMER),
    killRetryMs: duration('JTM_KILL_RETRY', '10s', false, NOT_A_TIMER),
    submitRetryMs: duration('JTM_SUBMIT_RETRY', '10s', false, NOT_A_TIMER),
    followRetryMs: duration('JTM_FOLLOW_RETRY', '60s', false, NOT_A_TIMER),
    heartbeatIntervalMs: duration('JTM_HEARTBEAT_INTERVAL', '1s', true),
    missedBeats: integer(
      'JTM_MISSED_BEATS',
      6,
      1,
      MAX_MISSED_BEATS,
      ' (a worker and a manager need at least 3)',
    ),
    taskRetentionMs: atLeast(
      'JTM_TASK_RETENTION',
      duration('JTM_TASK_RETENTION', '7d', false, NOT_A_TIMER),
      MIN_TASK_RETENTION_MS,
      " (1h): a task's result (status, isalive, logs, report) and its submit's commit are kept this long after it ends",
    ),
    taskRetries: integer('JTM_TASK_RETRIES', 1),
    killGraceMs: duration('JTM_KILL_GRACE', '5s'),
    // At most a minute: every task that leaves a daemon holds its slot that long.
    leftoverGraceMs: duration('JTM_LEFTOVER_GRACE', '2s', false, 60_000),
    lockDurationMs: duration('JTM_LOCK_DURATION', '30s', true),
    stalledIntervalMs: duration('JTM_STALLED_INTERVAL', '15s', true),
    sampleIntervalMs: duration('JTM_SAMPLE_INTERVAL', '2s', true),
    accounting: accountingMode(get('JTM_ACCOUNTING')),
    // At most 10 s: limited tasks are held to their limit (and, on cgroup v1, freed from waiting at it) only
    // as often as they are watched; `10m` for `10ms` let a task run at 3 × its limit (adversary 20 F14).
    watchIntervalMs: duration('JTM_WATCH_INTERVAL', '250ms', true, 10_000),
    memAvailableMarginBytes: size('JTM_MEM_AVAILABLE_MARGIN', '512M'),
    taskOomScoreAdj: integer('JTM_TASK_OOM_SCORE_ADJ', 500, 0, 1000),
    sweepIntervalMs: duration('JTM_SWEEP_INTERVAL', '5s', true),
    poolIdleMs: duration('JTM_POOL_IDLE', '10m', false, NOT_A_TIMER),
    outputTailBytes: integer('JTM_OUTPUT_TAIL_BYTES', 1024 * 1024, 1024),
    outputKeepBytes: integer('JTM_OUTPUT_KEEP_BYTES', 64 * 1024, 0),
    maxCommandBytes: integer(
      'JTM_MAX_COMMAND_BYTES',
      65536,
      1,
      MAX_COMMAND_BYTES,
      ' (the command is one argument of bash -c: Linux refuses longer ones, MAX_ARG_STRLEN)',
    ),
    logRepeatIntervalMs: duration('JTM_LOG_REPEAT_INTERVAL', '1m', true),
    siteConfigPath: path('JTM_SITE_CONFIG'),
    dashboardHost: get('JTM_DASHBOARD_HOST') ?? '127.0.0.1',
    dashboardPort: integer('JTM_DASHBOARD_PORT', 3000, 0, 65535),
    dashboardUser: dashboardUser(credential('JTM_DASHBOARD_USER')),
    dashboardPassword: credential('JTM_DASHBOARD_PASSWORD'),
    metricsHost: get('JTM_METRICS_HOST') ?? '127.0.0.1',
    metricsPort:
      get('JTM_METRICS_PORT') === undefined ? undefined : integer('JTM_METRICS_PORT', 9464, 0, 65535),
    jtmCommand: get('JTM_COMMAND'),
    sbatchIntervalMs: duration('JTM_SBATCH_INTERVAL', '1s'),
    sbatchBackoffMs: duration('JTM_SBATCH_BACKOFF', '10s'),
    sbatchMaxFailures: integer('JTM_SBATCH_MAX_FAILURES', 3, 1),
    // Positive: it is each provisioned worker's --idle-timeout, which refuses 0; with 0 every allocation's worker
    // exited at once with an error, and the manager asked Slurm for another, for ever.
    slurmIdleTimeoutMs: duration('JTM_SLURM_IDLE_TIMEOUT', '5m', true, NOT_A_TIMER),
    slurmWarningMs: duration('JTM_SLURM_WARNING', '5m', false, NOT_A_TIMER),
    slurmTimeSlackMs: atLeast(
      'JTM_SLURM_TIME_SLACK',
      duration('JTM_SLURM_TIME_SLACK', '5m', false, NOT_A_TIMER),
      MIN_SLURM_TIME_SLACK_MS,
      ": a pool's -t is also its tasks' time limit, and a worker takes no task that would not end 30 s before its allocation ends",
    ),
  };
  validatePrefix(config.prefix);
  return Object.freeze({ ...config, ...dropUndefined(overrides) });
}

const DEFAULT_PREFIX = '{jtm}';

/** The one setting a refused value names, or undefined (none, or several: REDIS_URL beside JTM_REDIS_URL). */
function settingNamed(message: string): ConfigKey | undefined {
  const named = CONFIG_KEYS.filter(k => new RegExp(`(^|[^A-Z0-9_])${k}([^A-Z0-9_]|$)`).test(message));
  return named.length === 1 ? named[0] : undefined;
}

/**
 * loadConfig for a command that reads only the settings `used`: a refused value of any other is left unset (its
 * default, which this command does not read either) and returned in `ignored`, instead of failing the command.
 * For `isalive`: a bad worker-only or dashboard setting in a shared environment file made every check answer
 * `unknown`, for ever, whatever the task did (review of adversary 15 P6). A bad value of a setting it uses
 * still fails as before; so does anything wrong with the --config file itself.
 */
export function loadConfigUsing(
  used: ReadonlySet<ConfigKey>,
  env: Env = process.env,
  overrides: Partial<Config> = {},
  configFile?: string,
): { config: Config; ignored: string[] } {
  const unset = new Set<string>();
  const ignored: string[] = [];
  for (;;) {
    try {
      return { config: loadConfig(env, overrides, configFile, unset), ignored };
    } catch (err) {
      const key = err instanceof InvalidInputError ? settingNamed(err.message) : undefined;
      if (key === undefined || used.has(key) || unset.has(key)) throw err;
      unset.add(key);
      ignored.push((err as InvalidInputError).message);
    }
  }
}

/**
 * ~/.jtm/log, or a directory of its own below it for a site with another prefix: two sites on one Redis (or
 * on two) count their task ids from 1 alike, and the default output of task N is `<log dir>/tasks/N.out`:
 * with one log dir, one site's task overwrote the other's output, and `jtm logs` printed the other's bytes.
 */
function defaultLogDir(home: string, prefix: string): string {
  const base = join(home, '.jtm', 'log');
  return prefix === DEFAULT_PREFIX ? base : join(base, `prefix-${prefix}`);
}

function accountingMode(raw: string | undefined): 'auto' | 'procfs' {
  if (raw === undefined || raw === 'auto') return 'auto';
  if (raw === 'procfs') return 'procfs';
  throw new InvalidInputError(`JTM_ACCOUNTING=${raw} must be auto or procfs`);
}

/**
 * HTTP basic auth splits user and password at the first colon (RFC 7617): a user with one could never log in,
 * and the dashboard started anyway, answering 401 to everyone.
 */
/**
 * The credentials the dashboard and the metrics endpoint ask for: both JTM_DASHBOARD_USER and
 * JTM_DASHBOARD_PASSWORD, or neither. One alone was dropped without a word, and a dashboard its operator meant to
 * protect served everyone on loopback (adversary 34 L5). Checked where a server starts, not by every command.
 */
export function dashboardCredentials(
  config: Pick<Config, 'dashboardUser' | 'dashboardPassword'>,
): { user: string; password: string } | undefined {
  const { dashboardUser: user, dashboardPassword: password } = config;
  if (user !== undefined && password !== undefined) return { user, password };
  if (user === undefined && password === undefined) return undefined;
  throw new InvalidInputError(
    `${user === undefined ? 'JTM_DASHBOARD_PASSWORD' : 'JTM_DASHBOARD_USER'} is set without ${user === undefined ? 'JTM_DASHBOARD_USER' : 'JTM_DASHBOARD_PASSWORD'}: set both (every route then asks for them), or neither`,
  );
}

function dashboardUser(user: string | undefined): string | undefined {
  if (user?.includes(':')) {
    throw new InvalidInputError(
      'JTM_DASHBOARD_USER may not hold ":" (HTTP basic auth splits user and password at the first colon)',
    );
  }
  return user;
}

function validatePrefix(prefix: string): void {
  if (!/^[A-Za-z0-9_{}.-]{1,64}$/.test(prefix)) {
    throw new InvalidInputError(`JTM_PREFIX=${prefix} may hold only letters, digits and _ { } . -`);
  }
  // Braces are a Redis Cluster hash tag: one pair around a non-empty name, or none. `{x` or `x}` was accepted,
  // and on a cluster is no tag at all (JTM's multi-key scripts then fail with CROSSSLOT).
  if (!/^[^{}]*(\{[^{}]+\}[^{}]*)?$/.test(prefix)) {
    throw new InvalidInputError(
      `JTM_PREFIX=${prefix}: braces make a Redis Cluster hash tag, one pair around a name (e.g. {jtm}), or none`,
    );
  }
}

/** JTM_CONNECT_TIMEOUT's default. */
const DEFAULT_CONNECT_TIMEOUT = '3s';

/** Largest `--config` file: KEY=VALUE lines are a few KB; more is not a configuration (/dev/zero). */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

// A config file is read once per process: `--config <(...)` is a pipe, which a second read finds empty
// (the settings were silently ignored), and a FIFO's writer is gone by then (the second open hung). A pipe
// not written in time is not waited for twice either.
const configFiles = new Map<string, string | InvalidInputError>();

/**
 * How long a config pipe may take to be written: JTM_CONNECT_TIMEOUT when the environment gives a valid one (the
 * file cannot say: it is not read yet), else its default. A FIFO or `<(sleep 30)` with nothing written hung every
 * command for ever, isalive included, and so Cromwell's check-alive (adversary 34 M1).
 */
function pipeWaitMs(env: Env): number {
  const raw = env['JTM_CONNECT_TIMEOUT'];
  try {
    const ms = raw ? parseDuration(raw) : NaN;
    if (ms > 0 && ms <= MAX_TIMER_MS) return ms;
  } catch {
    // refused where the setting is read; the default bounds the wait meanwhile
  }
  return parseDuration(DEFAULT_CONNECT_TIMEOUT);
}

/** KEY=VALUE lines (the `--config` / JTM_CONFIG_FILE file); the environment wins over the file. */
function readConfigFile(path: string | undefined, waitMs: number): Record<string, string> {
  if (!path) return {};
  let text = configFiles.get(path);
  if (text instanceof InvalidInputError) throw text;
  if (text === undefined) {
    try {
      text = readInputFile(path, 'config file', MAX_CONFIG_FILE_BYTES, { pipeWaitMs: waitMs });
    } catch (err) {
      if (err instanceof PipeNotWrittenError) configFiles.set(path, err);
      throw err;
    }
    configFiles.set(path, text);
  }
  const out: Record<string, string> = {};
  const lineOf = new Map<string, number>();
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('[')) continue;
    const where = `config file ${path}:${n + 1}`;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new InvalidInputError(`${where}: expected KEY=VALUE`);
    const key = m[1] as string;
    // As in task files: what would be silently ignored (a typo) or silently chosen (a key given twice) is
    // refused. The environment is not checked so: it also carries other programs' JTM_* variables.
    if (!KNOWN_KEYS.has(key)) {
      const near = closestName(key, CONFIG_KEYS);
      const hint = near ? `did you mean ${near}? ` : '';
      throw new InvalidInputError(`${where}: unknown key ${key} (${hint}.env.example lists every key)`);
    }
    const first = lineOf.get(key);
    if (first !== undefined) {
      throw new InvalidInputError(`${where}: ${key} given twice (line ${first} too: which one is meant?)`);
    }
    lineOf.set(key, n + 1);
    out[key] = (m[2] as string).replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

/**
 * Whether oclif's JTM_CONTENT_TYPE=json turns --json on for every command: the fast path of bin/run.js
 * then leaves the run to oclif, which prints the JSON.
 */
export function jsonRequestedByEnv(env: Env = process.env): boolean {
  return env['JTM_CONTENT_TYPE']?.toLowerCase() === 'json';
}

/** Variables a task (and the worker's pty host) does not inherit from its worker: Redis and dashboard secrets. */
const SECRET_VARS: ReadonlySet<string> = new Set([
  'REDIS_URL',
  'JTM_REDIS_URL',
  'JTM_DASHBOARD_PASSWORD',
  'JTM_DASHBOARD_USER',
]);

/**
 * The environment a worker passes on to its pty host and tasks: its own, as the process received it, without
 * secrets. Needs no configuration, so a worker can start its pty host before it has read any.
 */
export function workerEnvironment(env: Env = process.env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(([k, v]) => v !== undefined && !SECRET_VARS.has(k)),
  ) as Record<string, string>;
}
