import { join } from 'node:path';

import { InvalidInputError } from '../errors.js';
import { sizeBytes } from '../pool-spec.js';
import { sbatchLongName } from './sbatch-options.js';
import { quote, SBATCH_OPTION } from './shell.js';
import type { SiteProfile } from './site-profiles.js';

/** Everything a batch script of dynamic workers is made of; every field is already validated. */
export interface BatchScriptParams {
  profile: SiteProfile;
  pool: string;
  /** Names the script and its Slurm logs; workers are `<scriptId>_<node>_<i>`. */
  scriptId: string;
  jobDir: string;
  /** Wall time `[d-]hh:mm:ss`. */
  time: string;
  cpus?: number;
  mem?: string;
  memPerCpu?: string;
  nodes: number;
  workersPerNode: number;
  slotsPerWorker: number;
  /** Each worker of a node on its own share of the cores Slurm gave the node's step (taskset). */
  pinCores: boolean;
  partition?: string;
  qos?: string;
  account?: string;
  constraint?: string;
  /** `--sbatch-arg` options given by the user (validated against SBATCH_OPTION). */
  extraSbatch: readonly string[];
  /** Idle timeout of the workers as a duration string (`300000ms`), or none. */
  idleTimeout?: string;
  /** The workers' --task-mem-limit (`1048576K`) and --shutdown-grace (`20000ms`), validated; or none. */
  taskMemLimit?: string;
  shutdownGrace?: string;
  /** Seconds before walltime at which Slurm sends SIGUSR1 (the workers drain). */
  warningSeconds: number;
  /**
   * The allocation's `--comment` when the manager books it (managedAllocationComment): how a later pass finds
   * an allocation whose sbatch timed out after Slurm had queued it.
   */
  comment?: string;
  /** Shell text that runs jtm (an admin's JTM_COMMAND, or the quoted node + bin/run.js of this install). */
  jtmCommand: string;
  /** Variables exported to the workers (values are quoted here). */
  env: readonly (readonly [string, string])[];
}

/**
 * What a path in an `#SBATCH --output=`/`--chdir=` line must not hold: Slurm splits those lines at white space,
 * reads quotes and backslashes, expands `%` patterns, and ends the line at a `#` (a job whose --output held one
 * wrote no output at all, tried on Slurm 22.05 here). Anything else (braces: the default directory of a
 * prefix such as `{jtma}`, other punctuation, non-ASCII letters) is taken as it is; the script's shell never
 * sees these paths.
 */
const SBATCH_PATH_UNSAFE = /[\s"'\\%#\p{Cc}]/u;

/** Why `path` cannot go into an `#SBATCH` path option, or undefined when it can. */
export function unusableInSbatchPath(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must be an absolute path';
  const bad = SBATCH_PATH_UNSAFE.exec(path)?.[0];
  if (bad === undefined) return undefined;
  const named = /\s/.test(bad) && bad !== ' ' ? 'white space' : bad === ' ' ? 'a space' : JSON.stringify(bad);
  return `holds ${named}, which Slurm cannot take in a path (no spaces, quotes, backslashes, '%', '#' or control characters)`;
}
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

/**
 * Core pinning: the cores this step may use (Cpus_allowed_list, e.g. `0-3,8-11`) are split in equal shares,
 * one per worker, in order. With fewer cores than workers nothing is pinned.
 */
const PIN_SETUP = (workers: number): string[] => [
  '  local -a cpus=() pin=()',
  '  local range lo hi per',
  "  for range in $(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status | tr ',' ' '); do",
  '    lo=${range%-*}; hi=${range#*-}',
  '    cpus+=($(seq "$lo" "$hi"))',
  '  done',
  `  per=$(( \${#cpus[@]} / ${workers} ))`,
];
// Safe under `set -u` with an empty array (bash < 4.4 treats "${pin[@]}" of an empty array as unset).
const PIN_PREFIX = '${pin[@]+"${pin[@]}"} ';
const PIN_EACH = [
  '    pin=()',
  '    if [ "$per" -gt 0 ]; then',
  '      pin=(taskset -c "$(IFS=,; echo "${cpus[*]:$(( (i - 1) * per )):$per}")")',
  '    fi',
];

export function scriptPath(jobDir: string, scriptId: string): string {
  return join(jobDir, `jtm_dynamic_worker_${scriptId}.job`);
}

/**
 * The batch script: `#SBATCH` directives, the site's environment, then the workers: one srun step of N
 * workers per node on several nodes; on one node, N workers started by the batch shell itself.
 */
/**
 * sbatch options no --sbatch-arg may give, whatever JTM writes: they change what the allocation is for (a
 * script of the user's, an array of allocations) or how sbatch answers the manager, which reads the job id
 * from its output and must not wait for the job.
 */
const NOT_FOR_WORKERS: Readonly<Record<string, string>> = {
  wrap: "the batch script is JTM's",
  array: 'one allocation per request',
  parsable: "the manager reads sbatch's answer itself",
  'test-only': 'the allocation must be made',
  wait: 'sbatch must not wait for the job',
  hold: 'the workers must start when Slurm allocates',
  // The allocation's time and start are the workers' (adversary 25 F7): --time-min lets the scheduler end it
  // before the workers' end of life; --begin, --dependency and --deadline keep it from starting when Slurm
  // could allocate it, while the pool counts it as coming.
  'time-min': 'the allocation lasts the time JTM asks (-t), which the workers end their lives by',
  begin: 'the workers must start when Slurm allocates',
  dependency: 'the workers must start when Slurm allocates',
  deadline: 'the allocation lasts the time JTM asks (-t)',
  clusters: "the site profile's sbatch_flags choose the cluster (the manager follows its jobs there)",
};
/**
 * sbatch's single-letter forms (SBATCH_OPTION lets a letter through alone) of the options JTM writes and of the
 * ones above: `-t` was accepted beside JTM's own `--time` (a bare `#SBATCH -t`).
 */
const SHORT_NAMES: Readonly<Record<string, string>> = {
  J: 'job-name',
  N: 'nodes',
  c: 'cpus-per-task',
  t: 'time',
  o: 'output',
  e: 'error',
  D: 'chdir',
  p: 'partition',
  q: 'qos',
  A: 'account',
  C: 'constraint',
  a: 'array',
  W: 'wait',
  H: 'hold',
  M: 'clusters',
  b: 'begin',
  d: 'dependency',
};

/**
 * The long name of an sbatch option (`--time=1:00` → time, `-W` → wait), as sbatch reads it: an abbreviation is
 * the option it begins (`--job-nam=x` → job-name: sbatchLongName); `ambiguous` when it begins several.
 */
function sbatchName(
  option: string,
  refused: Iterable<string> = [],
): { name: string; ambiguous?: readonly string[] } {
  if (option.startsWith('--')) return sbatchLongName(option.slice(2).split('=')[0] ?? '', refused);
  const letter = option.slice(1);
  return { name: SHORT_NAMES[letter] ?? letter };
}

/**
 * A --sbatch-arg that contradicts a line JTM writes (a second `--time` after the one from -t: the workers
 * compute their end of life from -t while Slurm ends the job by the last; `--signal` replacing the warning the
 * workers drain on; `--output` elsewhere) or that no worker allocation may have is refused: what is
 * ambiguous is refused rather than guessed.
 */
/** Slurm's forms of a job's memory: it takes one of them. */
const MEMORY_FORMS = ['mem', 'mem-per-cpu', 'mem-per-gpu'];

/** The memory of a node of the allocation, in MB, asked as `memPerCpu` for each of its `cpus` (Slurm's 1 if none). */
export function perCpuNodeMemoryMb(memPerCpu: string, cpus: number | undefined): number {
  return Math.floor((sizeBytes(memPerCpu, 'memory per cpu (-mc)') * (cpus ?? 1)) / 1024 ** 2);
}

function refuseContradictions(extra: readonly string[], own: readonly string[]): void {
  const written = new Set(own.map(o => sbatchName(o).name));
  // Memory per node and per CPU are one setting to Slurm (it refuses both): JTM writing either, the other
  // contradicts it.
  if (MEMORY_FORMS.some(f => written.has(f))) for (const f of MEMORY_FORMS) written.add(f);
  const refused = [...written, ...Object.keys(NOT_FOR_WORKERS)];
  for (const o of extra) {
    const { name, ambiguous } = sbatchName(o, refused);
    const as = o.startsWith('--') && !o.startsWith(`--${name}`) ? `sbatch reads it as --${name}: ` : '';
    const why = ambiguous
      ? `sbatch cannot tell which of --${ambiguous.join(', --')} it is; spell the option out`
      : written.has(name)
        ? `${as}JTM writes --${name} itself (from its own flags or the site profile)`
        : NOT_FOR_WORKERS[name] && `${as}${NOT_FOR_WORKERS[name]}`;
    if (why) throw new InvalidInputError(`--sbatch-arg ${o} is refused: ${why}`);
  }
}

export function renderBatchScript(p: BatchScriptParams): string {
  const unusable = unusableInSbatchPath(p.jobDir);
  if (unusable) throw new InvalidInputError(`job directory ${JSON.stringify(p.jobDir)} ${unusable}`);
  for (const o of p.extraSbatch) {
    if (!SBATCH_OPTION.test(o)) throw new InvalidInputError(`invalid sbatch option ${JSON.stringify(o)}`);
  }
  const base = join(p.jobDir, `jtm_dynamic_worker_${p.scriptId}`);
  // One node needs no srun step: launching one costs a round of RPCs with slurmctld and slurmd (≈ 0.3 s of
  // a new allocation's time to its first task, measured by benchmark 7). Without a step, the early warning
  // must go to the batch shell (`B:`; otherwise Slurm sends it to the job's steps, of which there are none),
  // and the shell hands it on to the workers.
  const direct = p.nodes === 1;
  // JTM's own lines: the user's --sbatch-arg may add to them, not contradict them (refuseContradictions).
  const d: string[] = [
    `--job-name=jtm-${p.pool}`,
    ...(p.comment ? [`--comment=${p.comment}`] : []),
    `--nodes=${p.nodes}`,
    '--ntasks-per-node=1',
    ...(p.cpus ? [`--cpus-per-task=${p.cpus}`] : []),
    ...(p.mem ? [`--mem=${p.mem}`] : p.memPerCpu ? [`--mem-per-cpu=${p.memPerCpu}`] : []),
    `--time=${p.time}`,
    `--signal=${direct ? 'B:' : ''}USR1@${p.warningSeconds}`,
    `--output=${base}.out`,
    `--error=${base}.err`,
    `--chdir=${p.jobDir}`,
    ...(p.partition ? [`--partition=${p.partition}`] : []),
    ...(p.qos ? [`--qos=${p.qos}`] : []),
    ...(p.account ? [`--account=${p.account}`] : []),
    ...(p.constraint ? [`--constraint=${p.constraint}`] : []),
    ...(p.profile.exclusive ? ['--exclusive'] : []),
  ];
  refuseContradictions(p.extraSbatch, d);
  d.push(...p.profile.sbatch, ...p.extraSbatch);
  const workerArgs = [
    'worker',
    '--worker_type',
    'dynamic',
    '--slurm_job_id',
    '"$SLURM_JOB_ID"',
    '--pool_name',
    quote(p.pool),
    '--cluster',
    quote(p.profile.name),
    '--job_time',
    quote(p.time),
    '--num_worker_per_node',
    String(p.workersPerNode),
    '--slots',
    String(p.slotsPerWorker),
    ...(p.cpus ? ['--cpus_per_task', String(Math.max(1, Math.floor(p.cpus / p.workersPerNode)))] : []),
    // Asked per CPU, the workers are told the node's memory, -mc × the CPUs booked (Slurm's one when -c names
    // none): each worker's default task limit shares it, and a worker's own CPUs (-c ÷ -nwpn, at least one)
    // could add up to more than the node has.
    ...(p.mem
      ? ['--mem', quote(p.mem)]
      : p.memPerCpu
        ? ['--mem', `${perCpuNodeMemoryMb(p.memPerCpu, p.cpus)}M`, '--mem_per_cpu', quote(p.memPerCpu)]
        : []),
    ...(p.idleTimeout ? ['--idle-timeout', quote(p.idleTimeout)] : []),
    ...(p.taskMemLimit ? ['--task-mem-limit', quote(p.taskMemLimit)] : []),
    ...(p.shutdownGrace ? ['--shutdown-grace', quote(p.shutdownGrace)] : []),
    '--worker_id',
    `"${p.scriptId}_\${SLURM_NODEID:-0}_\${i}"`,
  ];
  const exports = p.env.map(([k, v]) => {
    if (!ENV_NAME.test(k)) throw new InvalidInputError(`invalid variable name ${k}`);
    return `export ${k}=${quote(v)}`;
  });
  const lines = [
    '#!/bin/bash',
    `# JTM dynamic workers of pool ${p.pool} on cluster ${p.profile.name}, written by \`jtm worker -wt dynamic\`.`,
    '# It may hold a Redis password: keep it private (mode 0600).',
    ...d.map(o => `#SBATCH ${o}`),
    '',
    'set -u',
    ...(p.profile.env.length > 0 ? [`# Environment of cluster ${p.profile.name} (site configuration)`] : []),
    ...p.profile.env,
    ...exports,
    '',
    direct
      ? '# Starts the workers of this node (the batch shell itself: one node, no srun step).'
      : '# One copy runs on each node (one srun task per node) and starts the workers of that node.',
    'jtm_node() {',
    // Declared before the trap: under `set -u` a warning expanding an unset $pids would end the shell.
    "  local i pid pids=''",
    ...(direct
      ? [
          "  # Slurm's early warning (--signal=B:USR1, before walltime) reaches this shell only: hand it on to the",
          '  # workers, which drain. `wait` returns when the trap runs: the loop below waits again.',
          "  trap 'kill -USR1 $pids 2>/dev/null' USR1",
        ]
      : [
          "  # Slurm's early warning (--signal=USR1, before walltime) reaches every process of the step: the",
          '  # workers drain; this shell must survive it and keep waiting for them.',
          "  trap 'true' USR1",
        ]),
    ...(p.pinCores ? PIN_SETUP(p.workersPerNode) : []),
    `  for i in $(seq 1 ${p.workersPerNode}); do`,
    ...(p.pinCores ? PIN_EACH : []),
    `    ${p.pinCores ? PIN_PREFIX : ''}${p.jtmCommand} ${workerArgs.join(' ')} &`,
    '    pids="$pids $!"',
    '  done',
    '  for pid in $pids; do',
    '    while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done',
    '  done',
    '}',
    ...(direct ? [] : ['export -f jtm_node']),
    `echo "jtm: Slurm job $SLURM_JOB_ID, pool ${p.pool}, ${p.workersPerNode} worker(s) per node on $SLURM_JOB_NUM_NODES node(s)"`,
    direct
      ? 'jtm_node'
      : `srun --nodes=${p.nodes} --ntasks-per-node=1 --kill-on-bad-exit=0 /bin/bash -c jtm_node`,
    '',
  ];
  return lines.join('\n');
}
