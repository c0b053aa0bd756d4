import { parseDuration } from './durations.js';
import { InvalidInputError } from './errors.js';
import { dropUndefined, jsonCount, optionalString, positiveInt } from './fields.js';

/**
 * The pool spec: what a Slurm allocation for a pool must provide, and every rule about pool names and the
 * values that reach `#SBATCH` lines (submit, the task store, the pool registry, the site file, the worker's
 * flags and the batch script all use these). Pure, below every domain folder: the task record stores a
 * PoolSpec, and the store sits below the pools and Slurm code that read it.
 */
export interface PoolSpec {
  name: string;
  cluster?: string;
  /** Wall time `hh:mm:ss`; a pool spec with a time makes the pool dynamic (Slurm-provisioned). */
  time?: string;
  cpu?: number;
  /** Memory per node, e.g. `10G`. */
  mem?: string;
  node?: number;
  nwpn?: number;
  shared?: number;
  account?: string;
  constraint?: string;
  qos?: string;
  partition?: string;
  job_id?: string;
}

/** Built-in cluster name: no Slurm, workers are started by hand. */
export const LOCAL_CLUSTER = 'local';

/** Pool names reach queue names, key names and batch scripts: letters, digits, `_ . -` only. */
export const POOL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** Values placed in `#SBATCH` lines: no spaces, quotes or shell metacharacters. */
export const SLURM_WORD = /^[A-Za-z0-9][A-Za-z0-9_.,:=+-]{0,127}$/;
/**
 * A Slurm feature expression (`--constraint`): features joined by `&` (and), `|` (or), `[...]` (one of, the same
 * for every node), counts `*N` and parentheses — `gpu&hbm80g` is how Perlmutter's 80 GB GPU nodes are asked for
 * (adversary 15 P13: refused). It reaches only an `#SBATCH` line, which sbatch reads without a shell; no blank,
 * quote, `$` or newline.
 */
export const SLURM_CONSTRAINT = /^[A-Za-z0-9[(][A-Za-z0-9_.,:=+\-&|[\]()*]{0,255}$/;
const TIME = /^(\d+-)?\d+:[0-5]\d:[0-5]\d$/;
const MEMORY = /^\d+(\.\d+)?\s*([KMGT]B?)?$/i;
const MAX_MEMORY_GB = 1_000_000_000;
const WORKFLOW_ID = /cromwell-executions\/[^/]+\/([^/]+)/;

const POOL_FIELDS = new Set([
  'name',
  'poolname',
  'cluster',
  'time',
  'cpu',
  'mem',
  'node',
  'nwpn',
  'shared',
  'account',
  'constraint',
  'qos',
  'partition',
  'job_id',
]);

/** The submit flag of each pool field, for messages. */
export const POOL_FLAG: Readonly<Record<string, string>> = {
  cluster: '-cl',
  time: '-t',
  cpu: '-c',
  mem: '-m',
  node: '-N',
  nwpn: '-nwpn',
  shared: '-s',
  account: '-A',
  constraint: '-C',
  qos: '-q',
  partition: '-P',
};

export function validatePoolName(name: unknown, what = 'pool name'): string {
  if (typeof name !== 'string' || !POOL_NAME.test(name)) {
    throw new InvalidInputError(
      `invalid ${what} ${JSON.stringify(name)}: use letters, digits, '_', '.' or '-' (at most 128, starting with a letter or digit)`,
    );
  }
  return name;
}

/** An optional value for a `#SBATCH` line (account, qos, partition, ...). */
export function slurmWord(value: unknown, field: string, form = SLURM_WORD): string | undefined {
  const s = optionalString(value, field);
  if (s === undefined) return undefined;
  if (!form.test(s)) throw new InvalidInputError(`invalid ${field} ${JSON.stringify(s)}`);
  return s;
}

const MEMORY_UNIT_MB: Readonly<Record<string, number>> = { K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 };

/**
 * `-m`: a number of GB (whole ones as `NG`, a fraction to the MB above: 4.5 → 4608M) or a Slurm size such as `10GB`, `500M`. Absent
 * (undefined, null) is no value; an empty string is refused (a flag given as `''` is a mistake, not "none"),
 * and so is any size below 1 MB (`0G`, `1K`, `0.0001`): as a task's limit every task would end outofresource
 * at once, and Slurm reads `--mem=0` as "all the node's memory".
 */
export function normaliseMemory(value: unknown, field = 'memory'): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' && value.trim() === '') {
    throw new InvalidInputError(`${field} is empty: use GB as a number, or e.g. 10G, 500M`);
  }
  const tooSmall = (): InvalidInputError =>
    new InvalidInputError(`${field} ${JSON.stringify(value)} is below 1 MB: use e.g. 500M or 4G`);
  if (typeof value === 'number' || (typeof value === 'string' && /^\d+(\.\d+)?$/.test(value.trim()))) {
    const gb = Number(value);
    if (!Number.isFinite(gb) || gb <= 0) throw new InvalidInputError(`${field} must be positive`);
    if (gb * 1024 < 1) throw tooSmall();
    // Beyond this JavaScript prints 1e+21: not a size Slurm (or anyone) can read.
    if (gb > MAX_MEMORY_GB) throw new InvalidInputError(`${field} must be at most ${MAX_MEMORY_GB} GB`);
    // Whole GB as the original wrote them; a fraction to the MB above it, never below the request (1.4 GB,
    // Cromwell's `memory: "1.4 GB"`, was rounded to 1G, a limit under which the call was killed).
    return Number.isInteger(gb) ? `${gb}G` : `${Math.ceil(gb * 1024)}M`;
  }
  if (typeof value !== 'string' || !MEMORY.test(value.trim())) {
    throw new InvalidInputError(
      `invalid ${field} ${JSON.stringify(value)}: use GB as a number, or e.g. 10G, 500M`,
    );
  }
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT])?B?$/i.exec(value.trim());
  const unit = (m?.[2] ?? 'G').toUpperCase();
  const mb = Number(m?.[1]) * (MEMORY_UNIT_MB[unit] ?? 1);
  if (mb < 1) throw tooSmall();
  // The same bound as a number of GB: `100000000000000000000G` was stored as 1.024e+23 MB (adversary 25 F2).
  if (mb > MAX_MEMORY_GB * 1024) throw new InvalidInputError(`${field} must be at most ${MAX_MEMORY_GB} GB`);
  return `${m?.[1] ?? value}${unit}`;
}

/** Megabytes of a normalised memory string (`10G`, `4608M`, `1024K`); 0 when there is none. */
export function memoryMegabytes(mem: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT])$/.exec(mem ?? '');
  return m ? Number(m[1]) * (MEMORY_UNIT_MB[m[2] as string] ?? 1) : 0;
}

export function validateTime(value: unknown, field = 'time'): string | undefined {
  const s = optionalString(value, field);
  if (s === undefined) return undefined;
  if (!TIME.test(s)) throw new InvalidInputError(`invalid ${field} ${JSON.stringify(s)}: use hh:mm:ss`);
  if (parseDuration(s) <= 0) {
    throw new InvalidInputError(`${field} ${JSON.stringify(s)} must be longer than 0`);
  }
  return s;
}

/**
 * The most workers (`-nwpn`) one node of an allocation starts. Each is a process on the node: the bound was
 * 1,000,000, and `-nwpn 100000` had the batch script start 100,000 of them in a 1-CPU, 205 MB allocation, which
 * brings a compute node down (adversary 25 F3). 256 is the most CPUs (hardware threads) of a node of the sites
 * JTM serves; `-nwpn` above `-c` stays allowed (each worker then gets one CPU: docs/slurm.md).
 */
export const MAX_WORKERS_PER_NODE = 256;

/** `-nwpn`, `nwpn`: a whole number of workers per node, 1 to MAX_WORKERS_PER_NODE. */
export function workersPerNode(value: unknown, field = 'nwpn'): number | undefined {
  const n = positiveInt(value, field);
  if (n !== undefined && n > MAX_WORKERS_PER_NODE) {
    throw new InvalidInputError(
      `${field} must be an integer from 1 to ${MAX_WORKERS_PER_NODE} (workers started on each node), got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** Validates the pool part of a task; `name` is resolved by the caller. */
export function parsePoolFields(raw: unknown): Partial<PoolSpec> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidInputError('pool must be an object');
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!POOL_FIELDS.has(k)) throw new InvalidInputError(`unknown pool field ${JSON.stringify(k)}`);
  }
  if (obj['name'] !== undefined && obj['poolname'] !== undefined && obj['name'] !== obj['poolname']) {
    throw new InvalidInputError('pool.name and pool.poolname differ: give one');
  }
  const name = obj['name'] ?? obj['poolname'];
  const spec: Partial<PoolSpec> = {
    name: name === undefined ? undefined : validatePoolName(name),
    // Site profiles are named in lower case only (site-profiles.ts), so a cluster matches whatever its case:
    // `-cl Perlmutter` and `"cluster": "TEST"` are `perlmutter` and `test`, stored so (README).
    cluster: slurmWord(obj['cluster'], 'cluster')?.toLowerCase(),
    time: validateTime(obj['time']),
    cpu: positiveInt(jsonCount(obj['cpu'], 'cpu'), 'cpu'),
    // A number of GB or a string in -m syntax (`"10G"`, `"500M"`, `"4.5"`): both are documented forms.
    mem: normaliseMemory(obj['mem'], 'mem'),
    node: positiveInt(jsonCount(obj['node'], 'node'), 'node'),
    nwpn: workersPerNode(jsonCount(obj['nwpn'], 'nwpn')),
    shared: positiveInt(jsonCount(obj['shared'], 'shared'), 'shared', 0),
    account: slurmWord(obj['account'], 'account'),
    constraint: slurmWord(obj['constraint'], 'constraint', SLURM_CONSTRAINT),
    qos: slurmWord(obj['qos'], 'qos'),
    partition: slurmWord(obj['partition'], 'partition'),
    job_id: slurmWord(obj['job_id'], 'job_id'),
  };
  if (spec.shared !== undefined && spec.shared > 1) throw new InvalidInputError('shared must be 0 or 1');
  return dropUndefined(spec);
}

/**
 * Per-workflow pools (`shared: 0`): `<pool>_<workflow uuid>`, the uuid taken from the task file's
 * `job_id` (second `_` token) or from the command's `cromwell-executions/<wf>/<uuid>/` path, as the original.
 */
export function workflowPoolName(pool: string, command: string, jobIdInFile: string | undefined): string {
  if (jobIdInFile) {
    const token = jobIdInFile.split('_')[1];
    if (token)
      return validatePoolName(`${pool}_${workflowId(token, `job_id ${JSON.stringify(jobIdInFile)}`)}`);
  }
  const m = WORKFLOW_ID.exec(command);
  if (!m?.[1]) {
    throw new InvalidInputError(
      'shared=0 needs a Cromwell workflow id in the command (cromwell-executions/<workflow>/<uuid>/...)',
    );
  }
  return validatePoolName(`${pool}_${workflowId(m[1], `the command's ${m[0]}`)}`);
}

/**
 * A path component that is no workflow id Cromwell writes: `cromwell-executions/wf/../x` and `…/wf/-rf/…` made
 * the pools `<pool>_..` and `<pool>_-rf` (adversary 25 F8), names that read as a path or an option wherever a
 * pool's name is shown or typed. Refused rather than mended: `..` names another directory, so no id of this
 * call can be guessed from it. Every other name stays as it was.
 */
function workflowId(token: string, from: string): string {
  if (token === '.' || token === '..' || token.startsWith('-')) {
    throw new InvalidInputError(
      `shared=0: ${JSON.stringify(token)} from ${from} is not a workflow id (cromwell-executions/<workflow>/<uuid>/...)`,
    );
  }
  return token;
}

/** A Cromwell workflow id (a UUID) as the last `_` part of a per-workflow pool's name. */
const WORKFLOW_POOL = /^(.+)_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The pool a per-workflow pool (`<pool>_<workflow uuid>`, workflowPoolName) was made from, or undefined. */
export function workflowPoolBase(name: string): string | undefined {
  return WORKFLOW_POOL.exec(name)?.[1];
}

/** Whether the manager provisions Slurm allocations for a pool with this spec. */
export function isDynamicSpec(spec: PoolSpec | undefined): boolean {
  return Boolean(spec?.time && spec.cluster && spec.cluster !== LOCAL_CLUSTER);
}

const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Bytes of a size in `-m` syntax (a number of GB, or `500M`, `4G`, `1.5T`). */
export function sizeBytes(text: string, what = 'size'): number {
  const norm = normaliseMemory(text, what);
  const m = norm ? /^(\d+(?:\.\d+)?)([KMGT])$/.exec(norm) : null;
  if (!m)
    throw new InvalidInputError(
      `invalid ${what} ${JSON.stringify(text)}: use GB as a number, or e.g. 4G, 500M`,
    );
  return Math.round(Number(m[1]) * (UNITS[m[2] as string] as number));
}
