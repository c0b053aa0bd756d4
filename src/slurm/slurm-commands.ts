import { execFile } from 'node:child_process';
import { userInfo } from 'node:os';

import { SlurmError } from '../errors.js';
import { sbatchLongName } from './sbatch-options.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a Slurm client command without a shell; a missing binary or a hang is a result, not a crash. A client that
 * cannot read its configuration file (SLURM_CONF naming a missing file, a configuration on a share not mounted)
 * says so on its first line, then retries for a minute before giving up: it is stopped at that line, since a
 * minute of retries held the manager's sweep and its provisioning lock (adversary 39 F1).
 */
export function runSlurmCommand(
  command: string,
  args: readonly string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise(resolve => {
    let noConfig = false;
    const child = execFile(
      command,
      [...args],
      { cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err && !noConfig) return resolve({ code: 0, stdout, stderr });
        const e = (err ?? {}) as NodeJS.ErrnoException & { code?: unknown; killed?: boolean };
        const code = typeof e.code === 'number' ? e.code : 1;
        const why = noConfig
          ? `${command}: cannot read its Slurm configuration`
          : e.code === 'ENOENT'
            ? `${command}: command not found`
            : typeof e.code === 'string'
              ? `${command}: cannot start (${e.code})`
              : e.killed
                ? `${command}: timed out`
                : '';
        resolve({ code, stdout, stderr: why ? `${why}\n${stderr}` : stderr });
      },
    );
    let seen = '';
    child.stderr?.on('data', (chunk: Buffer | string) => {
      if (noConfig || seen.length > 4096) return;
      seen += String(chunk);
      if (CONFIG_RETRY.test(seen)) {
        noConfig = true;
        child.kill('SIGTERM');
      }
    });
  });
}

/** Slurm's client (s_p_parse_file) when its configuration file is missing: "…, retrying in 1sec up to 60sec". */
const CONFIG_RETRY = /s_p_parse_file: .*retrying in \d+ ?sec/;

/**
 * Whether a Slurm command failed in this host's own Slurm client rather than in Slurm: the command is not on PATH
 * or cannot start, the client cannot read its configuration, cannot authenticate (munge), or cannot reach the
 * controller. Another host's client may well work; a refusal of the job (a bad partition, a limit) is Slurm's
 * answer and would be the same from any host.
 */
export function isSlurmClientFault(message: string): boolean {
  return CLIENT_FAULT.test(message);
}

const CLIENT_FAULT =
  /command not found|cannot start \(|cannot read its Slurm configuration|s_p_parse_file|Unable to process configuration file|ClusterName needs to be specified|configuration source|fetch_config|unable to contact slurm controller|communication connection failure|connection refused|munge|Invalid authentication|authentication error/i;

/** The line of Slurm's stderr that says what went wrong (its last `error:` line), for task reasons. */
export function slurmMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map(l => l.trim())
    .filter(l => l !== '');
  const errors = lines.filter(l => /error/i.test(l));
  return (errors[errors.length - 1] ?? lines[lines.length - 1] ?? 'no message').slice(0, 500);
}

/**
 * Whether an sbatch refusal may heal by itself: a partition drained or inactive (maintenance), the controller
 * unreachable, restarting or slow, a per-user or per-account submit limit, sbatch itself timing out. Not: an
 * invalid partition, account or QOS, a request larger than any node, a bad option.
 */
export function isTransientSbatchError(message: string): boolean {
  return TRANSIENT_SBATCH.test(message);
}

// Read in the whole of sbatch's stderr: the last error line alone (slurmMessage) is often the generic "Job
// violates accounting/QOS policy (job submit limit, ...)", which also covers limits that never heal; the
// specific reason (QOSMaxSubmitJobPerUserLimit...) is on a line of its own. Not a timeout of sbatch itself: the
// job may have been created anyway, and an hour of retries could leave orphan allocations.
const TRANSIENT_SBATCH =
  /inactive or drain|partition not available|unable to contact slurm controller|socket timed out|zero bytes were transmitted or received|communication connection failure|standby|slurm_receive_msg|connection refused|resource temporarily unavailable|not responding|try again|MaxSubmitJob|GrpSubmitJobs/i;

/**
 * `held`: pending with a hold on it (scontrol hold, requeuehold, a launch failure): it starts only once released.
 * `suspended`: started, then stopped by Slurm (scontrol suspend, preemption by suspension, gang scheduling): its
 * processes are frozen until it is resumed.
 */
export type SlurmJobState = 'pending' | 'running' | 'held' | 'suspended';

/** squeue's active jobs by key, with the reason of each held one (`%r`: JobHeldAdmin, JobHeldUser, …). */
export class ActiveJobs extends Map<string, SlurmJobState> {
  readonly holdReasons = new Map<string, string>();
}

/**
 * Whether squeue's reason of a pending job is a hold: a user's or an admin's (`scontrol hold`), a requeue in held
 * state (`scontrol requeuehold`), or Slurm's own after a batch launch failed ("launch failed requeued held").
 * Such a job waits for a release that may never come.
 */
export function isHoldReason(reason: string): boolean {
  return (
    /^(JobHeldAdmin|JobHeldUser|JobHoldMaxRequeue)$/.test(reason) ||
    /requeued held|requeued in held state/i.test(reason)
  );
}

/** squeue states of a job that waits for a release: requeued held, a special exit, its reservation deleted. */
const HELD_STATES = new Set(['REQUEUE_HOLD', 'SPECIAL_EXIT', 'RESV_DEL_HOLD']);

/** Whether a hold is Slurm's own after a failed launch of the batch script, not a person's decision. */
export function isLaunchFailureHold(reason: string | undefined): boolean {
  return reason !== undefined && /launch failed requeued held/i.test(reason);
}

/**
 * A Slurm job as JTM keys it: its id, or `id;cluster` for a job submitted to another cluster of a
 * multi-cluster site (`--clusters`/`-M` in the site profile), as `sbatch --parsable` prints it. squeue and
 * scancel see such a job only when given its cluster: without it the manager took the job for ended at the
 * next sweep and submitted another, every sweep.
 */
export function splitJobKey(key: string): { id: string; cluster: string | undefined } {
  const at = key.indexOf(';');
  return at < 0 ? { id: key, cluster: undefined } : { id: key.slice(0, at), cluster: key.slice(at + 1) };
}

/** The clusters other than the local one that the jobs `keys` are on. */
export function clustersOf(keys: Iterable<string>): string[] {
  const clusters = new Set<string>();
  for (const k of keys) {
    const c = splitJobKey(k).cluster;
    if (c) clusters.add(c);
  }
  return [...clusters].sort();
}

/**
 * The user's jobs that Slurm still knows as alive (pending, configuring, running, completing, suspended), on
 * the local cluster and on `clusters` (keyed `id;cluster`). Throws SlurmError when a squeue fails: the caller
 * must then keep what it knew, never conclude "dead".
 */
export async function listActiveJobs(
  clusters: readonly string[] = [],
  timeoutMs = 30_000,
): Promise<ActiveJobs> {
  const jobs = new ActiveJobs();
  for (const { stdout, multi } of await squeueOfUser('%i|%T|%r', clusters, timeoutMs))
    parseSqueue(stdout, multi, jobs);
  return jobs;
}

/**
 * squeue of this user's jobs in `format`, on the local cluster and (`-M`, its output `multi`: per-cluster
 * headers) on `clusters`. Throws SlurmError when one fails.
 */
async function squeueOfUser(
  format: string,
  clusters: readonly string[],
  timeoutMs = 30_000,
): Promise<{ stdout: string; multi: boolean }[]> {
  const args = ['-h', '-u', userInfo().username, '-o', format];
  const runs = [runSlurmCommand('squeue', args, { timeoutMs })];
  if (clusters.length > 0) {
    runs.push(runSlurmCommand('squeue', ['-M', clusters.join(','), ...args], { timeoutMs }));
  }
  return (await Promise.all(runs)).map((r, i) => {
    if (r.code !== 0)
      throw new SlurmError(
        `squeue failed: ${slurmMessage(r.stderr)}`,
        false,
        false,
        isSlurmClientFault(r.stderr),
      );
    return { stdout: r.stdout, multi: i > 0 };
  });
}

/** The `--comment` of the allocations a manager books for this deployment (its scope: Redis URL and prefix). */
export function managedAllocationComment(scope: string): string {
  return `jtm-managed:${scope}`;
}

/** An allocation Slurm lists with this deployment's managed comment: its pool, from the job name `jtm-<pool>`. */
export interface ManagedJob {
  pool: string;
  state: SlurmJobState;
}

/**
 * The user's live allocations that carry `comment` (managedAllocationComment), by job key, on the local cluster
 * and on `clusters`. Throws SlurmError when a squeue fails.
 */
export async function listManagedJobs(
  comment: string,
  clusters: readonly string[] = [],
): Promise<Map<string, ManagedJob>> {
  const out = new Map<string, ManagedJob>();
  for (const { stdout, multi } of await squeueOfUser('%i|%T|%r|%j|%k', clusters))
    parseManagedJobs(stdout, multi, comment, out);
  return out;
}

/** Adds the jobs of squeue's `%i|%T|%r|%j|%k` lines whose comment is `comment` to `out` (see parseSqueue). */
export function parseManagedJobs(
  stdout: string,
  multi: boolean,
  comment: string,
  out: Map<string, ManagedJob>,
): void {
  for (const { key, state, fields } of squeueRows(stdout, multi)) {
    const [name, note] = fields;
    if (!name?.startsWith('jtm-') || note !== comment) continue;
    out.set(key, { pool: name.slice('jtm-'.length), state });
  }
}

/**
 * Adds the jobs of squeue's `%i|%T|%r` lines to `jobs`. `multi`: the output of `squeue -M`, where a
 * `CLUSTER: <name>` line comes before each cluster's jobs: those are keyed `id;<name>`.
 */
export function parseSqueue(stdout: string, multi: boolean, jobs: ActiveJobs): void {
  for (const { key, state, reason } of squeueRows(stdout, multi)) {
    jobs.set(key, state);
    if (state === 'held') jobs.holdReasons.set(key, reason);
  }
}

/**
 * The jobs of squeue lines `%i|%T|%r|…`: key (`id;<cluster>` after a `CLUSTER: <name>` header of `squeue -M`,
 * when `multi`), state (a pending job with a hold reason is `held`: counted as coming capacity, it left a pool's
 * tasks waiting with nothing said, adversary 18 S1), the reason, and the fields after the first three.
 */
function* squeueRows(
  stdout: string,
  multi: boolean,
): Generator<{ key: string; state: SlurmJobState; reason: string; fields: string[] }> {
  let cluster: string | undefined;
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    const header = /^CLUSTER:\s*(\S+)$/.exec(line);
    if (header) {
      cluster = header[1];
      continue;
    }
    const [id, state, reason = '', ...fields] = line.split('|');
    if (!id || !state) continue;
    const pending = state === 'PENDING' || state === 'CONFIGURING';
    yield {
      key: multi && cluster ? `${id};${cluster}` : id,
      state:
        (state === 'PENDING' && isHoldReason(reason)) || HELD_STATES.has(state)
          ? 'held'
          : pending
            ? 'pending'
            : state === 'SUSPENDED'
              ? 'suspended'
              : 'running',
      reason,
      fields,
    };
  }
}

/**
 * `sbatch --parsable`: the job's key (splitJobKey): `id;cluster` when Slurm says which cluster took it, or
 * when `cluster` (the one the flags or script name) is given; else the id.
 */
export async function sbatch(
  scriptFile: string,
  flags: readonly string[],
  cwd: string,
  cluster?: string,
): Promise<string> {
  const r = await runSlurmCommand('sbatch', ['--parsable', ...flags, scriptFile], { cwd });
  const m = /^(\d+)(?:;(\S+))?/.exec(r.stdout.trim());
  if (r.code !== 0 || !m) {
    const said = r.stderr || r.stdout;
    // Refused: sbatch exited non-zero on its own with an error of Slurm's; not killed by our time limit (the job
    // may exist), not a reply we could not read.
    const refused =
      r.code !== 0 && !/^sbatch: (timed out|command not found)/.test(said) && /error/i.test(said);
    throw new SlurmError(
      `sbatch failed: ${slurmMessage(said)}`,
      isTransientSbatchError(said),
      refused,
      isSlurmClientFault(said),
    );
  }
  const on = m[2] ?? cluster;
  return on ? `${m[1]};${on}` : (m[1] as string);
}

/** Cancels jobs by key: one scancel for the local cluster's, one `scancel -M <cluster>` per other cluster. */
export async function scancel(keys: readonly string[]): Promise<void> {
  const byCluster = new Map<string, string[]>();
  for (const k of keys) {
    const { id, cluster } = splitJobKey(k);
    const ids = byCluster.get(cluster ?? '') ?? [];
    ids.push(id);
    byCluster.set(cluster ?? '', ids);
  }
  for (const [cluster, ids] of byCluster) {
    const r = await runSlurmCommand('scancel', [...(cluster ? ['-M', cluster] : []), ...ids], {
      timeoutMs: 30_000,
    });
    if (r.code !== 0) throw new SlurmError(`scancel failed: ${slurmMessage(r.stderr)}`);
  }
}

/**
 * The one cluster that sbatch options (`--clusters=X`, `--clusters X`, `-M X`, `-MX`) send a job to, or
 * undefined: none named, or several (`a,b`: Slurm picks one, and `--parsable` says which).
 */
export function clusterOption(options: readonly string[]): string | undefined {
  let named: string | undefined;
  options.forEach((o, i) => {
    // Abbreviated too, as sbatch reads it (`--clu=x`, adversary 39 F4).
    const m = /^(?:--([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?|-M(.*))$/.exec(o);
    if (!m || (m[1] !== undefined && sbatchLongName(m[1]).name !== 'clusters')) return;
    named = m[1] !== undefined ? (m[2] ?? options[i + 1]) : m[3] !== '' ? m[3] : options[i + 1];
  });
  if (named === undefined) return undefined;
  const value = named.replace(/^=/, '').trim();
  return value !== '' && !value.includes(',') ? value : undefined;
}
