import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Config } from '../config.js';
import { formatHms, MAX_TIME_LIMIT_MS, parseDuration, parseDurationOr } from '../durations.js';
import { InvalidInputError } from '../errors.js';
import { positiveInt } from '../fields.js';
import { ensurePrivateDir } from '../private-dir.js';
import type { Logger } from '../logger.js';
import {
  normaliseMemory,
  sizeBytes,
  SLURM_CONSTRAINT,
  slurmWord,
  validatePoolName,
  validateTime,
  workersPerNode,
} from '../pool-spec.js';
import { renderBatchScript, scriptPath, type BatchScriptParams } from './batch-script.js';
import { maskUrl } from '../redis/connection.js';
import { quote, SBATCH_OPTION, SHELL_WORDS } from './shell.js';
import { loadSiteConfig, resolveCluster } from './site-profiles.js';
import { clusterOption, sbatch } from './slurm-commands.js';

/** What `jtm worker -wt dynamic` asks of Slurm (the original's flag names). */
export interface DynamicWorkerRequest {
  pool_name?: string;
  cluster?: string;
  job_time?: string;
  cpus_per_task?: number;
  mem?: string;
  mem_per_cpu?: string;
  nnodes?: number;
  num_worker_per_node?: number;
  constraint?: string;
  qos?: string;
  charging_account?: string;
  partition?: string;
  worker_id?: string;
  job_script_dir_name?: string;
  dry_run?: boolean;
  slots?: number;
  'idle-timeout'?: string;
  /** Passed on to the workers, validated here (a value the workers would refuse would fail the whole allocation). */
  'task-mem-limit'?: string;
  'shutdown-grace'?: string;
  /** A manual worker's: refused (the workers of an allocation live as long as it). */
  lifetime?: string;
  'sbatch-arg'?: string[];
  'pin-cores'?: boolean;
  /** `--comment` of the allocation (the manager's own: managedAllocationComment). */
  comment?: string;
}

export interface SubmitWorkersResult {
  output: string;
  exitCode: number;
}

export interface SubmittedAllocation {
  jobId: string;
  script: string;
  /** Worker slots the allocation brings: nodes × workers per node × slots per worker. */
  slots: number;
}

const SCRIPT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Writes and submits the batch script of dynamic workers; with dry_run, prints it (password masked). */
export async function submitDynamicWorkers(
  request: DynamicWorkerRequest,
  config: Config,
  logger: Logger,
): Promise<SubmitWorkersResult> {
  const params = batchParams(request, config);
  // As submit bounds a pool's time (adversary 39 F5: -t 99999999:00:00 was written as is). Here, not in
  // batchParams: the manager's allocations add JTM_SLURM_TIME_SLACK and the workers' start to a pool time that
  // submit bounded already.
  if (parseDuration(params.time) > MAX_TIME_LIMIT_MS)
    throw new InvalidInputError(`job time (-t) ${params.time} is longer than the maximum of 365 days`);
  if (request.dry_run) return { output: renderBatchScript(maskSecrets(params)), exitCode: 0 };
  const submitted = await submitAllocation(params, logger);
  return { output: submitted.jobId, exitCode: 0 };
}

/** Writes the script (mode 0600: it may hold the Redis password) and sbatch-es it. */
export async function submitAllocation(
  params: BatchScriptParams,
  logger: Logger,
): Promise<SubmittedAllocation> {
  const text = renderBatchScript(params);
  ensurePrivateDir(params.jobDir, 'the job directory (-jd, else <log dir>/job)');
  const file = scriptPath(params.jobDir, params.scriptId);
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  const jobId = await sbatch(
    file,
    params.profile.sbatchFlags,
    params.jobDir,
    clusterOption([...params.profile.sbatchFlags, ...params.profile.sbatch]),
  );
  const slots = allocationSlots(params);
  logger.info({ pool: params.pool, jobId, script: file, slots }, 'Slurm allocation submitted');
  return { jobId, script: file, slots };
}

/** Validates a request against the site profile and this configuration; throws InvalidInputError. */
/** Worker slots an allocation brings: nodes × workers per node × slots per worker. */
export function allocationSlots(
  params: Pick<BatchScriptParams, 'nodes' | 'workersPerNode' | 'slotsPerWorker'>,
): number {
  return params.nodes * params.workersPerNode * params.slotsPerWorker;
}

export function batchParams(request: DynamicWorkerRequest, config: Config): BatchScriptParams {
  const pool = validatePoolName(request.pool_name ?? '', 'pool name (-p)');
  const profile = resolveCluster(loadSiteConfig(config.siteConfigPath), request.cluster);
  const def = profile.defaults;
  const time = validateTime(request.job_time ?? def.time, 'job time (-t)');
  if (time === undefined) throw new InvalidInputError('a wall time is needed: -t hh:mm:ss');
  const scriptId = request.worker_id ?? `w${randomBytes(5).toString('hex')}`;
  if (!SCRIPT_ID.test(scriptId)) throw new InvalidInputError(`invalid worker id ${JSON.stringify(scriptId)}`);
  for (const o of request['sbatch-arg'] ?? []) {
    if (!SBATCH_OPTION.test(o)) {
      throw new InvalidInputError(
        `invalid --sbatch-arg ${JSON.stringify(o)}: use --name or --name=value, no spaces or quotes`,
      );
    }
  }
  // Slurm takes one of --mem and --mem-per-cpu: one of two given was dropped without a word.
  if (request.mem !== undefined && request.mem_per_cpu !== undefined) {
    throw new InvalidInputError(
      'give the memory per node (-m) or per CPU (-mc), not both: Slurm takes one of --mem and --mem-per-cpu',
    );
  }
  // Memory asked per CPU replaces the site's default per node (which lost to it, and the allocation was booked
  // at the site's size).
  const memPerCpu = normaliseMemory(request.mem_per_cpu, 'memory per cpu (-mc)');
  const jobDir = resolve(request.job_script_dir_name ?? join(config.logDir, 'job'));
  const timeMs = parseDuration(time);
  let idleTimeout: string | undefined;
  if (request['idle-timeout'] !== undefined) {
    idleTimeout = `${parseDurationOr(request['idle-timeout'], '--idle-timeout')}ms`;
  }
  // Passed on, as --idle-timeout is: they were left out of the script without a word, and garbage was accepted
  // (adversary 34 M2). Written in a canonical form, so nothing of the user's text reaches the script.
  if (request.lifetime !== undefined)
    throw new InvalidInputError(
      '--lifetime is for a worker run here: the workers of -wt dynamic live as long as their allocation (-t)',
    );
  const taskMemLimit =
    request['task-mem-limit'] !== undefined
      ? `${Math.ceil(sizeBytes(request['task-mem-limit'], '--task-mem-limit') / 1024)}K`
      : undefined;
  const shutdownGrace =
    request['shutdown-grace'] !== undefined
      ? `${parseDurationOr(request['shutdown-grace'], '--shutdown-grace')}ms`
      : undefined;
  return {
    profile,
    pool,
    scriptId,
    jobDir,
    time,
    // Bounded as a submit's are: `-N 99999999999999999999` was written `--nodes=100000000000000000000`
    // (adversary 25 F8).
    cpus: positiveInt(request.cpus_per_task, 'cpus per task (-c)') ?? def.cpu,
    mem: memPerCpu ? undefined : normaliseMemory(request.mem ?? def.mem, 'memory (-m)'),
    memPerCpu,
    nodes: positiveInt(request.nnodes, 'nodes (-N)') ?? 1,
    workersPerNode: workersPerNode(request.num_worker_per_node ?? def.nwpn, 'workers per node (-nwpn)') ?? 1,
    slotsPerWorker: request.slots ?? 1,
    pinCores: request['pin-cores'] ?? profile.pinCores,
    partition: slurmWord(request.partition ?? def.partition, 'partition (-P)'),
    qos: slurmWord(request.qos ?? def.qos, 'qos (-q)'),
    account: slurmWord(request.charging_account ?? def.account, 'account (-A)'),
    constraint: slurmWord(request.constraint ?? def.constraint, 'constraint (-C)', SLURM_CONSTRAINT),
    extraSbatch: request['sbatch-arg'] ?? [],
    idleTimeout,
    taskMemLimit,
    shutdownGrace,
    // Slurm sends the warning when the remaining time drops below it; a warning longer than half the
    // allocation would make the workers drain from the start.
    warningSeconds: Math.max(1, Math.floor(Math.min(config.slurmWarningMs, timeMs / 2) / 1000)),
    ...(request.comment ? { comment: request.comment } : {}),
    jtmCommand: config.jtmCommand === undefined ? defaultJtmCommand() : checkedJtmCommand(config.jtmCommand),
    env: workerEnv(config),
  };
}

/**
 * How long after its allocation began a dynamic pool's worker may take its first task (Slurm's start of the
 * batch script, site `env` lines and module loads, Node): a worker measures its life from its own start, so
 * the manager books this much more than the pool's time and slack. Without it, a time limit that fit to the
 * millisecond (JTM_SLURM_TIME_SLACK=30s, --timeout = the pool's time) was accepted by submit, then left by
 * every worker, while the manager booked one allocation after another (adversary 7, H3).
 */
export const WORKER_START_ALLOWANCE_MS = 60_000;

/**
 * A provisioned allocation's wall time, as Slurm's `hh:mm:ss`: the pool's time plus the configured slack (a
 * task as long as the pool's time fits), plus a minute for its workers' start (WORKER_START_ALLOWANCE_MS).
 */
export function allocationTime(poolTime: string, config: Config): string {
  return formatHms(parseDuration(poolTime) + config.slurmTimeSlackMs + WORKER_START_ALLOWANCE_MS);
}

/** What the workers inside the allocation need to find Redis and behave as this installation. */
function workerEnv(config: Config): [string, string][] {
  const env: [string, string | undefined][] = [
    ['REDIS_URL', config.redisUrl],
    ['JTM_REDIS_TLS_CA', config.redisTlsCa],
    ['JTM_REDIS_TLS_CERT', config.redisTlsCert],
    ['JTM_REDIS_TLS_KEY', config.redisTlsKey],
    ['JTM_PREFIX', config.prefix],
    // Only when sharded, so that an unsharded site's batch scripts are what they always were.
    ['JTM_SHARDS', config.shards > 1 ? String(config.shards) : undefined],
    ['JTM_LOG_LEVEL', config.logLevel],
    ['JTM_LOG_DIR', isAbsolute(config.logDir) ? config.logDir : resolve(config.logDir)],
    ['JTM_CONNECT_TIMEOUT', `${config.connectTimeoutMs}ms`],
    ['JTM_HEARTBEAT_INTERVAL', `${config.heartbeatIntervalMs}ms`],
    ['JTM_MISSED_BEATS', String(config.missedBeats)],
    ['JTM_SAMPLE_INTERVAL', `${config.sampleIntervalMs}ms`],
    ['JTM_KILL_GRACE', `${config.killGraceMs}ms`],
    ['JTM_LEFTOVER_GRACE', `${config.leftoverGraceMs}ms`],
    ['JTM_TASK_RETENTION', `${config.taskRetentionMs}ms`],
    ['JTM_TASK_RETRIES', String(config.taskRetries)],
    // What only a worker reads: sbatch carries the manager's environment, never its `--config` file.
    ['JTM_LOCK_DURATION', `${config.lockDurationMs}ms`],
    ['JTM_STALLED_INTERVAL', `${config.stalledIntervalMs}ms`],
    ['JTM_ACCOUNTING', config.accounting],
    ['JTM_WATCH_INTERVAL', `${config.watchIntervalMs}ms`],
    // In K: a bare number is GB, and a byte count over 1024 is a power-of-two fraction, exact in decimal.
    ['JTM_MEM_AVAILABLE_MARGIN', `${config.memAvailableMarginBytes / 1024}K`],
    ['JTM_OUTPUT_TAIL_BYTES', String(config.outputTailBytes)],
    ['JTM_OUTPUT_KEEP_BYTES', String(config.outputKeepBytes)],
    ['JTM_LOG_REPEAT_INTERVAL', `${config.logRepeatIntervalMs}ms`],
  ];
  return env.filter((e): e is [string, string] => e[1] !== undefined);
}

function maskSecrets(p: BatchScriptParams): BatchScriptParams {
  return { ...p, env: p.env.map(([k, v]) => [k, k === 'REDIS_URL' ? maskUrl(v) : v] as const) };
}

/** `node <this installation>/bin/run.js`, absolute, for compute nodes that share the filesystem. */
/**
 * JTM_COMMAND as it goes into a batch script, where it is shell text (it may name an interpreter and a script):
 * refused unless it is plain words. It went in as it was: a line break or a `;` in it added commands of their own to
 * every allocation's script, and a path with a space was split (adversary 34 M5).
 */
export function checkedJtmCommand(text: string): string {
  if (SHELL_WORDS.test(text.trim())) return text.trim();
  throw new InvalidInputError(
    `JTM_COMMAND=${JSON.stringify(text)} is not plain words: it is written into batch scripts as shell text; use letters, digits and _./,:=+@%~- only, or single quotes around a word with other characters ('/opt/my jtm/bin/jtm')`,
  );
}

export function defaultJtmCommand(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const bin = join(dir, 'bin', 'run.js');
    if (existsSync(bin) && existsSync(join(dir, 'package.json')))
      return `${quote(process.execPath)} ${quote(bin)}`;
    dir = dirname(dir);
  }
  throw new InvalidInputError('cannot find bin/run.js of this installation: set JTM_COMMAND');
}
