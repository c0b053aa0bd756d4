import { isAbsolute, normalize, resolve } from 'node:path';

import { MAX_COMMAND_BYTES } from '../config.js';
import { MAX_TIME_LIMIT_MS, parseDurationOr } from '../durations.js';
import { InvalidInputError } from '../errors.js';
import { dropUndefined, optionalString as str, refuseReplacedBytes } from '../fields.js';
import {
  isDynamicSpec,
  normaliseMemory,
  parsePoolFields,
  POOL_FLAG,
  slurmWord,
  validatePoolName,
  workflowPoolName,
  type PoolSpec,
} from '../pool-spec.js';
import { isTerminalPath } from '../terminal-device.js';
import { deriveRcFile } from './rc-file.js';

/** A validated task, ready to be written to Redis. */
export interface NewTask {
  command: string;
  pool: string;
  poolSpec: PoolSpec;
  cwd: string;
  stdout?: string;
  stderr?: string;
  outputFiles?: string;
  allowEmptyOutputs?: boolean;
  timeoutMs?: number;
  /** Memory limit of the task (`-m` syntax normalised, e.g. `4G`). */
  memLimit?: string;
  rcFile?: string;
  cromwellJobId?: string;
}

/** The fields of a task file's entry (snake_case as the original); any other field is refused. */
export const TASK_FIELDS = [
  'command',
  'output_dir',
  'output_files',
  'stdout',
  'stderr',
  'pool',
  'timeout',
  'mem_limit',
  'rc_file',
  'allow_empty_outputs',
  'cromwell_job_id',
] as const;

/** What submit receives, from flags or from one entry of a task file: values not yet checked. */
export type TaskInput = Partial<Record<(typeof TASK_FIELDS)[number], unknown>>;

export interface SubmitDefaults {
  /** `-p`: pool name when the task file names none. */
  pool?: string;
  /** Pool fields from flags; they override the file's pool fields. */
  poolFields?: Partial<PoolSpec>;
  timeout?: string;
  /** `--mem-limit`: a task file's `mem_limit` wins. */
  memLimit?: string;
  rcFile?: string;
  cromwellJobId?: string;
  allowEmptyOutputs?: boolean;
  /** The submitter's working directory: the default cwd of the task and base of relative paths. */
  cwd: string;
  maxCommandBytes: number;
}

const KNOWN_FIELDS: ReadonlySet<string> = new Set(TASK_FIELDS);

function resolvePath(p: string | undefined, base: string): string | undefined {
  if (p === undefined) return undefined;
  // `~` is `$HOME`, not a directory named `~` under the submitter's cwd (a JSON file has no shell to expand it).
  const home = p === '~' || p.startsWith('~/') ? `$HOME${p.slice(1)}` : p;
  // `$VARS` are the worker's to expand; only plain relative paths are anchored to the submitter's cwd.
  return isAbsolute(home) || home.startsWith('$') ? home : resolve(base, home);
}

/**
 * Paths that name the reading process's own descriptors: they resolve in the worker, to its own log, never to
 * the submitter's terminal or files.
 */
const OWN_DESCRIPTORS = /^\/(dev\/(stdin|stdout|stderr|fd)|proc\/(self|thread-self|\d+\/fd))(\/|$)/;

/** Terminals: a task has none (docs/architecture.md), and a new pty (`/dev/ptmx`) or another's swallows what is written. */
const TERMINALS = /^\/dev\/(ptmx|pts\/|tty)/;

/** A path under /dev, without `$VARS` (the worker's to expand), that is a terminal on this host (terminal-device.ts). */
function isTerminalUnderDev(path: string): boolean {
  return path.startsWith('/dev/') && !path.includes('$') && isTerminalPath(path);
}

/** Linux's limits: a path of 4,096 bytes with its NUL, a name of 255. */
const PATH_MAX_BYTES = 4095;
const NAME_MAX_BYTES = 255;

/**
 * A path no system call takes (over PATH_MAX, or a name over NAME_MAX) is refused at submit, naming its length,
 * not echoing it: a 1 MB stdout path was taken, failed at run time, and its record held it three times, 3 MB
 * (adversary 40 L2). Not for a path with `$VARS` (the worker expands them).
 */
function refuseImpossiblePath(path: string, field: string): void {
  if (path.includes('$')) return;
  const bytes = Buffer.byteLength(path);
  const longest = Math.max(...path.split('/').map(n => Buffer.byteLength(n)));
  if (bytes <= PATH_MAX_BYTES && longest <= NAME_MAX_BYTES) return;
  const start = JSON.stringify(path.slice(0, 40));
  throw new InvalidInputError(
    bytes > PATH_MAX_BYTES
      ? `${field} ${start}… is ${bytes.toLocaleString('en-US')} bytes long: paths are at most ${PATH_MAX_BYTES.toLocaleString('en-US')} bytes (PATH_MAX)`
      : `${field} ${start}… has a name of ${longest} bytes: names are at most ${NAME_MAX_BYTES} bytes (NAME_MAX)`,
  );
}

/** A stdout, stderr or rc file path: as resolvePath, refusing the process's own descriptors and terminals. */
function outputPath(p: string | undefined, field: string, base: string): string | undefined {
  // `--rc-file ''` (a task file's '' is "not given", optionalString), refused as `-m ''` is: resolved, it was the
  // submitter's cwd, a directory, where no rc is ever written (adversary 34 M4: the task's rc_error said so
  // only when it ended).
  if (p === '') throw new InvalidInputError(`${field} is empty: give a file path, or leave it out`);
  const path = resolvePath(p, base);
  // Normalised first: `/dev/./stdout` and `//dev/stdout` name the same descriptor.
  if (path !== undefined && OWN_DESCRIPTORS.test(normalize(path))) {
    throw new InvalidInputError(
      `${field} ${JSON.stringify(p)} would be the worker's own output, not yours: give a file`,
    );
  }
  // `/dev/ptmx` and `/dev/pts/N` were taken: the task ended success and its output was nowhere (adversary 10 K10).
  // By name for a path not there on this host (a pty not yet allocated); by what the device is for the rest of
  // /dev (`/dev/console` was taken, its output going to the console: adversary 28 F8; likewise hvc0, ttyAMA0, a
  // link under /dev/serial/). Only /dev is looked at: a stat of every task's output path would cost a bulk submit
  // one lookup each on a network filesystem, and device nodes live there.
  // Without its trailing slashes (adversary 30 F6: `/dev/console/` was taken; its open fails, but the path names a
  // terminal all the same).
  if (path !== undefined) refuseImpossiblePath(path, field);
  const named = path === undefined ? undefined : normalize(path).replace(/(?<=.)\/+$/, '');
  if (named !== undefined && (TERMINALS.test(named) || isTerminalUnderDev(named))) {
    throw new InvalidInputError(
      `${field} ${JSON.stringify(p)} is a terminal, where the output would be lost: give a file`,
    );
  }
  return path;
}

/**
 * The one precedence rule of submit (README): a flag fills in what the task file leaves unset, and a flag
 * that disagrees with what the file sets is refused, naming both: neither silently wins.
 */
function agree(fromFile: unknown, fromFlag: unknown, field: string, flag: string): void {
  if (fromFile === undefined || fromFlag === undefined || fromFile === fromFlag) return;
  throw new InvalidInputError(
    `${flag} ${JSON.stringify(fromFlag)} disagrees with the task file's ${field} ${JSON.stringify(fromFile)}: give it in one place`,
  );
}

/** What buildTask derives from the submit defaults alone: the same for every task of a submit. */
interface FlagValues {
  flagPool: Partial<PoolSpec>;
  flagPoolEntries: [string, unknown][];
  flagPoolName: string | undefined;
}

// Keyed by the defaults object (callers do not change one after use): a bulk submit (one defaults
// object, 10,000 tasks) derives them once.
const flagValues = new WeakMap<SubmitDefaults, FlagValues>();

function fromFlags(defaults: SubmitDefaults): FlagValues {
  let v = flagValues.get(defaults);
  if (!v) {
    const flagPool = dropUndefined(defaults.poolFields ?? {});
    v = { flagPool, flagPoolEntries: Object.entries(flagPool), flagPoolName: undefined };
    flagValues.set(defaults, v);
  }
  return v;
}

/** Validates one task input against the submit defaults; throws InvalidInputError with one clear line. */
export function buildTask(input: TaskInput, defaults: SubmitDefaults): NewTask {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidInputError('a task must be a JSON object');
  }
  for (const k of Object.keys(input)) {
    if (!KNOWN_FIELDS.has(k)) throw new InvalidInputError(`unknown task field ${JSON.stringify(k)}`);
  }
  const command = str(input.command, 'command');
  if (command === undefined || command.trim() === '') throw new InvalidInputError('no command given');
  const maxBytes = Math.min(defaults.maxCommandBytes, MAX_COMMAND_BYTES);
  const bytes = Buffer.byteLength(command);
  if (bytes > maxBytes) {
    throw new InvalidInputError(
      `command is ${bytes} bytes, longer than ${maxBytes} (JTM_MAX_COMMAND_BYTES; at most ${MAX_COMMAND_BYTES}, Linux's limit on one argument)`,
    );
  }
  const filePool = parsePoolFields(input.pool);
  const flags = fromFlags(defaults);
  const { flagPool, flagPoolEntries } = flags;
  for (const [k, v] of flagPoolEntries) {
    agree(filePool[k as keyof PoolSpec], v, `pool.${k}`, POOL_FLAG[k] ?? k);
  }
  const poolFields = flagPoolEntries.length === 0 ? filePool : { ...filePool, ...flagPool };
  // Validated here, after the checks above, as before: the first error a user sees stays the same.
  flags.flagPoolName ??= defaults.pool !== undefined ? validatePoolName(defaults.pool) : undefined;
  const flagPoolName = flags.flagPoolName;
  agree(filePool.name, flagPoolName, 'pool.name', '-p');
  let pool = filePool.name ?? flagPoolName;
  if (pool === undefined)
    throw new InvalidInputError('no pool given: use -p/--pool_name or pool.name in the task file');
  const fileJobId = slurmWord(input.cromwell_job_id, 'cromwell_job_id');
  agree(fileJobId, defaults.cromwellJobId, 'cromwell_job_id', '-jid');
  const cromwellJobId = fileJobId ?? defaults.cromwellJobId;
  // A per-workflow pool only where the manager provisions it (Slurm, a time): a manual pool's workers are
  // started by hand, and no one can start them for a name that holds a workflow id not known yet; every call of
  // the shipped Cromwell stanza with its defaults (`cluster = "local"`, `shared = 0`) was pending for ever
  // (adversary 9 J3). Such a call runs on the pool it names.
  if (
    poolFields.shared === 0 &&
    isDynamicSpec({ ...poolFields, name: pool }) &&
    (filePool.job_id || cromwellJobId)
  ) {
    pool = workflowPoolName(pool, command, filePool.job_id);
  }
  const outputDir = resolvePath(str(input.output_dir, 'output_dir'), defaults.cwd);
  const cwd = outputDir ?? defaults.cwd;
  refuseReplacedBytes(cwd, 'the working directory');
  refuseImpossiblePath(cwd, 'output_dir');
  // The task's own time limit; without one, the pool's requested time (Cromwell's `time` runtime attribute) is
  // the limit, as a direct Slurm job would have had.
  const fileTimeout = str(input.timeout, 'timeout');
  agree(fileTimeout, defaults.timeout, 'timeout', '--timeout');
  const timeoutText = fileTimeout ?? defaults.timeout ?? poolFields.time;
  // Named as the user wrote it: a pool time of 00:00:00 is the pool's `time`, not a `timeout`.
  const timeoutField = (fileTimeout ?? defaults.timeout) !== undefined ? 'timeout' : 'pool time (-t)';
  let timeoutMs: number | undefined;
  if (timeoutText !== undefined) {
    timeoutMs = parseDurationOr(timeoutText, timeoutField);
    if (timeoutMs <= 0) throw new InvalidInputError(`${timeoutField} must be positive`);
    if (timeoutMs > MAX_TIME_LIMIT_MS)
      throw new InvalidInputError(`${timeoutField} ${timeoutText} is longer than the maximum of 365 days`);
  }
  if (input.allow_empty_outputs === false && defaults.allowEmptyOutputs === true) {
    agree(false, true, 'allow_empty_outputs', '-zf');
  }
  const allowEmpty = input.allow_empty_outputs ?? defaults.allowEmptyOutputs;
  if (allowEmpty !== undefined && typeof allowEmpty !== 'boolean') {
    throw new InvalidInputError('allow_empty_outputs must be true or false');
  }
  const fileRc = str(input.rc_file, 'rc_file');
  const rc = (p: string | undefined): string | undefined => resolvePath(p, defaults.cwd);
  agree(rc(fileRc), rc(defaults.rcFile), 'rc_file', '--rc-file');
  const rcFile = fileRc ?? defaults.rcFile;
  return dropUndefined({
    command,
    pool,
    poolSpec: { ...poolFields, name: pool },
    cwd,
    stdout: outputPath(str(input.stdout, 'stdout'), 'stdout', cwd),
    stderr: outputPath(str(input.stderr, 'stderr'), 'stderr', cwd),
    outputFiles: str(input.output_files, 'output_files'),
    allowEmptyOutputs: allowEmpty,
    timeoutMs,
    memLimit: normaliseMemory(input.mem_limit ?? defaults.memLimit, 'mem_limit'),
    // Derived at submit so that whoever ends the task (worker, manager) finds it in the record.
    rcFile: outputPath(rcFile, 'rc_file', defaults.cwd) ?? deriveRcFile(command),
    cromwellJobId,
  });
}
