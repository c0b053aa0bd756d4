import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { InvalidInputError } from './errors.js';
import { parseDuration } from './durations.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

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
  readonly logLevel: LogLevel;
  readonly logDir: string;
  /** How long a CLI command waits for Redis before giving up. */
  readonly connectTimeoutMs: number;
  /** How long isalive keeps retrying a failing Redis before answering `unknown`. */
  readonly isaliveRetryMs: number;
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
   * BullMQ job lock of a running task, renewed by its worker every half period. When a worker dies, its
   * tasks go back to the queue once the lock has expired and a live worker's stalled check (every
   * `stalledIntervalMs`) sees it: their sum bounds how long a killed worker's tasks wait to be re-run.
   */
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly sampleIntervalMs: number;
  readonly sweepIntervalMs: number;
  /** Pools with no worker and no task for this long are expired by the manager. */
  readonly poolIdleMs: number;
  /** Longest command accepted by submit, in bytes. */
  readonly maxCommandBytes: number;
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

export type Env = Readonly<Record<string, string | undefined>>;

/** Resolves the configuration; the only reader of the process environment. */
export function loadConfig(
  env: Env = process.env,
  overrides: Partial<Config> = {},
  configFile?: string,
): Config {
  const merged = { ...readConfigFile(configFile ?? env['JTM_CONFIG_FILE']), ...stripUndefined(env) };
  const get = (key: string): string | undefined => {
    const v = merged[key];
    return v === undefined || v === '' ? undefined : v;
  };
  const duration = (key: string, fallback: string): number => {
    const raw = get(key) ?? fallback;
    try {
      return parseDuration(raw);
    } catch {
      throw new InvalidInputError(`${key}=${raw} is not a duration (e.g. 5s, 2m, 00:10:00)`);
    }
  };
  const integer = (key: string, fallback: number, min = 0): number => {
    const raw = get(key);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidInputError(`${key}=${raw} must be an integer ≥ ${min}`);
    return n;
  };
  const logLevel = (get('JTM_LOG_LEVEL') ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new InvalidInputError(`JTM_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const home = get('HOME') ?? homedir();
  const config: Config = {
    redisUrl: get('REDIS_URL') ?? get('JTM_REDIS_URL'),
    redisTlsCa: get('JTM_REDIS_TLS_CA'),
    redisTlsCert: get('JTM_REDIS_TLS_CERT'),
    redisTlsKey: get('JTM_REDIS_TLS_KEY'),
    prefix: get('JTM_PREFIX') ?? '{jtm}',
    logLevel,
    logDir: get('JTM_LOG_DIR') ?? join(home, '.jtm', 'log'),
    connectTimeoutMs: duration('JTM_CONNECT_TIMEOUT', '3s'),
    isaliveRetryMs: duration('JTM_ISALIVE_RETRY', '10s'),
    heartbeatIntervalMs: duration('JTM_HEARTBEAT_INTERVAL', '2s'),
    missedBeats: integer('JTM_MISSED_BEATS', 3, 1),
    taskRetentionMs: duration('JTM_TASK_RETENTION', '7d'),
    taskRetries: integer('JTM_TASK_RETRIES', 1),
    killGraceMs: duration('JTM_KILL_GRACE', '5s'),
    lockDurationMs: duration('JTM_LOCK_DURATION', '30s'),
    stalledIntervalMs: duration('JTM_STALLED_INTERVAL', '15s'),
    sampleIntervalMs: duration('JTM_SAMPLE_INTERVAL', '2s'),
    sweepIntervalMs: duration('JTM_SWEEP_INTERVAL', '5s'),
    poolIdleMs: duration('JTM_POOL_IDLE', '10m'),
    maxCommandBytes: integer('JTM_MAX_COMMAND_BYTES', 65536, 1),
    siteConfigPath: get('JTM_SITE_CONFIG'),
    dashboardHost: get('JTM_DASHBOARD_HOST') ?? '127.0.0.1',
    dashboardPort: integer('JTM_DASHBOARD_PORT', 3000),
    dashboardUser: get('JTM_DASHBOARD_USER'),
    dashboardPassword: get('JTM_DASHBOARD_PASSWORD'),
    metricsHost: get('JTM_METRICS_HOST') ?? '127.0.0.1',
    metricsPort: get('JTM_METRICS_PORT') === undefined ? undefined : integer('JTM_METRICS_PORT', 9464),
    jtmCommand: get('JTM_COMMAND'),
    sbatchIntervalMs: duration('JTM_SBATCH_INTERVAL', '1s'),
    sbatchBackoffMs: duration('JTM_SBATCH_BACKOFF', '10s'),
    sbatchMaxFailures: integer('JTM_SBATCH_MAX_FAILURES', 3, 1),
    slurmIdleTimeoutMs: duration('JTM_SLURM_IDLE_TIMEOUT', '5m'),
    slurmWarningMs: duration('JTM_SLURM_WARNING', '5m'),
    slurmTimeSlackMs: duration('JTM_SLURM_TIME_SLACK', '5m'),
  };
  validatePrefix(config.prefix);
  return Object.freeze({ ...config, ...stripUndefined(overrides) });
}

function validatePrefix(prefix: string): void {
  if (!/^[A-Za-z0-9_{}.-]{1,64}$/.test(prefix)) {
    throw new InvalidInputError(`JTM_PREFIX=${prefix} may hold only letters, digits and _ { } . -`);
  }
}

/** KEY=VALUE lines (the `--config` / JTM_CONFIG_FILE file); the environment wins over the file. */
function readConfigFile(path: string | undefined): Record<string, string> {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  const out: Record<string, string> = {};
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('[')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new InvalidInputError(`config file ${path}:${n + 1}: expected KEY=VALUE`);
    out[m[1] as string] = (m[2] as string).replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Whether oclif's JTM_CONTENT_TYPE=json turns --json on for every command: the fast path of bin/run.js
 * then leaves the run to oclif, which prints the JSON.
 */
export function jsonRequestedByEnv(env: Env = process.env): boolean {
  return env['JTM_CONTENT_TYPE']?.toLowerCase() === 'json';
}

/** The task environment a worker passes on: its own, as the process received it. */
export function workerEnvironment(env: Env = process.env): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;
}
