import { readFileSync, statSync } from 'node:fs';

import { byTaskShard, type JtmContext } from '../context.js';
import { deploymentScope } from '../redis/location.js';
import type { Logger } from '../logger.js';
import { TaskStatus } from '../tasks/status.js';
import { monotonicMs } from './monotonic.js';
import { listPids, readProc, type ProcInfo } from './proc-files.js';
import { terminateAll } from './signal-procs.js';
import { tokenRounds } from './task-token.js';

/*
 * Leftovers of lost runs. The pty host kills its tasks' trees when its worker dies, but when the worker AND
 * its pty host die together (kill -9 of both, the OOM killer taking both), the tasks' processes — and their
 * nohup/setsid children — live on, with nobody left to kill them. Every task process carries its run's
 * JTM_TASK_TOKEN (= the record's run_token) and JTM_TASK_ID: the next worker on the host finds them by it,
 * and kills each group whose run is no longer live (its record names another run, or its worker is dead).
 * Tasks also carry JTM_TASK_SCOPE, their deployment (Redis and prefix): the same user may run several JTM
 * deployments on one host (a test prefix beside production), and task ids and records of another deployment
 * mean nothing here — its processes are never touched.
 */

export { deploymentScope } from '../redis/location.js';

/** Processes of one run found on this host, by their JTM_TASK_TOKEN. */
export interface RunProcesses {
  token: string;
  /** From JTM_TASK_ID; undefined if no process of the group carries a valid one (never killed then). */
  taskId: number | undefined;
  procs: ProcInfo[];
}

const TOKEN = Buffer.from('JTM_TASK_TOKEN=');
const TASK_ID = Buffer.from('JTM_TASK_ID=');
const SCOPE = Buffer.from('JTM_TASK_SCOPE=');

/** The value of `NAME=` in a /proc/PID/environ block (NUL-separated entries), or undefined. */
function envValue(env: Buffer, name: Buffer): string | undefined {
  for (let at = env.indexOf(name); at >= 0; at = env.indexOf(name, at + 1)) {
    // Only at the start of an entry: `X_JTM_TASK_ID=` or a value holding the text must not match.
    if (at > 0 && env[at - 1] !== 0) continue;
    const end = env.indexOf(0, at);
    return env.toString('latin1', at + name.length, end < 0 ? env.length : end);
  }
  return undefined;
}

/** Whether process `pid` runs as this process's user (its /proc directory's owner; gone: no). */
function ownedHere(pid: number): boolean {
  try {
    return statSync(`/proc/${pid}`).uid === process.geteuid?.();
  } catch {
    return false;
  }
}

/** How long the scan reads /proc before it lets the worker's event loop run (ms). */
const SCAN_SLICE_MS = 5;

/**
 * Every process on this host whose environment carries JTM_TASK_TOKEN and this deployment's JTM_TASK_SCOPE,
 * grouped by token. Only this user's processes (a worker runs its tasks as its own user; root's reads every
 * environment, and another user's processes are skipped all the same); so is this very process.
 */
export async function scanRunProcesses(scope: string): Promise<Map<string, RunProcesses>> {
  const groups = new Map<string, RunProcesses>();
  // Read synchronously, a few ms at a time, then the event loop runs: a synchronous scan of a node with many
  // processes held the worker past a heartbeat (self-fencing then stopped the run it was about to start), and
  // one read at a time through the thread pool queued each read behind the worker's other file work (a
  // cgroup's rmdir waits in the kernel): a re-run waited 17 s to 146 s for this scan on a loaded node,
  // `running` and not started (adversary 16 Q3). A /proc read costs microseconds.
  let slice = monotonicMs();
  for (const pid of listPids()) {
    if (monotonicMs() - slice >= SCAN_SLICE_MS) {
      await new Promise(resolve => setImmediate(resolve));
      slice = monotonicMs();
    }
    if (pid === process.pid) continue;
    let env: Buffer;
    try {
      env = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    if (env.indexOf(TOKEN) < 0) continue;
    const token = envValue(env, TOKEN);
    if (!token || envValue(env, SCOPE) !== scope) continue;
    // Another user's process is never a run of ours, though a root worker can read its environment: the scope
    // is no secret (every task's environment shows it), and a local user without any credential planted a
    // process carrying it, which the sweep signalled and recorded as a leftover of any task it named, finished
    // ones included (adversary 35 F6).
    if (!ownedHere(pid)) continue;
    const info = readProc(pid);
    if (!info || info.state === 'Z') continue;
    const id = Number(envValue(env, TASK_ID));
    let group = groups.get(token);
    if (!group) groups.set(token, (group = { token, taskId: undefined, procs: [] }));
    if (group.taskId === undefined && Number.isSafeInteger(id) && id > 0) group.taskId = id;
    group.procs.push(info);
  }
  return groups;
}

export interface LeftoverSweepOptions {
  workerId: string;
  host: string;
  logger: Logger;
  /** Tokens of this worker's own runs (never touched, whatever Redis says). */
  ownTokens: () => Iterable<string>;
}

export interface SweepResult {
  killed: { task: number; pids: number[] }[];
  /**
   * Live runs of other workers, left alone, with their worker's alive key TTL: the soonest that worker could
   * be declared dead (-1: a key without TTL).
   */
  spared: { task: number; token: string; ttlMs: number }[];
}

/**
 * One sweep: finds the processes of runs that are not live any more and kills them (TERM, KILL after the
 * kill grace), reporting them in their task's record. A run is live while its record is running with its
 * token as run_token and the owning worker's alive key exists; only such runs and this worker's own are left.
 */
export async function sweepLeftovers(ctx: JtmContext, opts: LeftoverSweepOptions): Promise<SweepResult> {
  const result: SweepResult = { killed: [], spared: [] };
  // /proc first, Redis after: a process seen here was started after its run's claim, so the record read
  // next names that run unless the run has ended or been taken over since.
  const groups = await scanRunProcesses(deploymentScope(ctx.config));
  for (const t of opts.ownTokens()) groups.delete(t);
  const candidates: (RunProcesses & { taskId: number })[] = [];
  for (const g of groups.values()) {
    if (g.taskId !== undefined) candidates.push(g as RunProcesses & { taskId: number });
    else opts.logger.warn({ pids: g.procs.map(p => p.pid) }, 'task processes without a task id: left alone');
  }
  if (candidates.length === 0) return result;

  // Each task's record and its worker's alive key are on the task's shard (its id says which), not
  // necessarily this worker's: on a sharded site, a worker looked the tasks of other shards' workers on its
  // node up in its own shard, found no record, and killed them as lost runs (adversary 11 L8). One pipeline
  // per shard (a Cluster pipeline's keys must share a node).
  const lost: { shard: JtmContext; group: RunProcesses & { taskId: number } }[] = [];
  for (const [shard, groups] of byTaskShard(ctx, candidates, g => g.taskId)) {
    for (const g of await lostRuns(shard, groups, result)) lost.push({ shard, group: g });
  }

  await Promise.all(
    lost.map(async ({ shard, group: g }) => {
      const pids = await killLostRun(shard, g, opts);
      if (pids.length > 0) result.killed.push({ task: g.taskId, pids });
    }),
  );
  if (result.spared.length > 0)
    opts.logger.info(
      { tasks: result.spared.map(s => s.task) },
      'processes of live runs of other workers left alone',
    );
  return result;
}

/**
 * The runs among `groups` (tasks of `shard`) that are not live: their record names another run, or their
 * worker is dead. The live ones of other workers go to `result.spared`.
 */
async function lostRuns(
  shard: JtmContext,
  groups: readonly (RunProcesses & { taskId: number })[],
  result: SweepResult,
): Promise<(RunProcesses & { taskId: number })[]> {
  const records = shard.redis.pipeline();
  for (const g of groups) records.hmget(shard.keys.task(g.taskId), 'status', 'worker_id', 'run_token');
  const recs = (await records.exec()) ?? [];
  // Runs the record still names: live only while their worker's alive key exists.
  const named: { group: RunProcesses & { taskId: number }; owner: string }[] = [];
  const lost: (RunProcesses & { taskId: number })[] = [];
  groups.forEach((g, i) => {
    const [err, v] = recs[i] ?? [new Error('no reply'), undefined];
    if (err) throw err;
    const [status, owner, runToken] = (v ?? []) as (string | null)[];
    if (status === String(TaskStatus.running) && runToken === g.token && owner)
      named.push({ group: g, owner });
    else lost.push(g);
  });
  if (named.length === 0) return lost;
  const alive = shard.redis.pipeline();
  for (const n of named) alive.pttl(shard.keys.workerAlive(n.owner));
  const ttls = (await alive.exec()) ?? [];
  named.forEach((n, i) => {
    const [err, v] = ttls[i] ?? [new Error('no reply'), undefined];
    if (err) throw err;
    const ttl = Number(v);
    // -2: no key (the worker is dead); -1: a key without TTL counts as alive.
    if (ttl === -2) {
      lost.push(n.group);
      return;
    }
    result.spared.push({ task: n.group.taskId, token: n.group.token, ttlMs: ttl });
  });
  return lost;
}

/**
 * Kills the processes of one lost run (TERM, KILL after the kill grace) and reports them in its task's record;
 * the pids signalled.
 */
async function killLostRun(
  ctx: JtmContext,
  g: RunProcesses & { taskId: number },
  opts: Pick<LeftoverSweepOptions, 'host' | 'logger'>,
): Promise<number[]> {
  // One kill per run at a time: a sweep and a re-run's start (killEarlierRuns) finding the same run each killed
  // and reported part of it (two reports, pids counted twice). The second waits for the first to end, which the
  // re-run must anyway before it starts.
  const busy = killing.get(g.token);
  if (busy) {
    await busy;
    return [];
  }
  const done = killAndReport(ctx, g, opts);
  killing.set(g.token, done);
  try {
    return await done;
  } finally {
    killing.delete(g.token);
  }
}

/** Kills in progress in this process, by run token. */
const killing = new Map<string, Promise<number[]>>();

async function killAndReport(
  ctx: JtmContext,
  g: RunProcesses & { taskId: number },
  opts: Pick<LeftoverSweepOptions, 'host' | 'logger'>,
): Promise<number[]> {
  // Found again at each round by token, among the pids handed out since the last: children forked meanwhile
  // are caught, a reused pid never is.
  const { signalled, survivors } = await terminateAll(tokenRounds(g.token), ctx.config.killGraceMs);
  if (signalled.length === 0) return [];
  opts.logger.warn(
    { task: g.taskId, pids: signalled, ...(survivors.length > 0 ? { survivors } : {}) },
    'killed leftover processes of a lost run',
  );
  const reported = await ctx.tasks.reportLeftovers(g.taskId, signalled, opts.host);
  if (!reported) opts.logger.info({ task: g.taskId }, 'leftovers of an expired task: nothing to report into');
  return signalled;
}

/**
 * Before a task runs again here, the processes its earlier runs left on this node are killed: this worker
 * has just claimed it, so no other run of it is live (the claim takes a run over only once its worker's lease
 * has expired). Without it, a worker restarted after it and its pty host were killed together started the
 * re-run first and found the lost run's processes at its first sweep, a second later: two executions at once
 * (adversary 5, G10). Runs only for an attempt after the first (a /proc scan: ≈ 10 ms per 1,000 processes).
 */
export async function killEarlierRuns(
  ctx: JtmContext,
  taskId: number,
  ownToken: string,
  opts: Pick<LeftoverSweepOptions, 'host' | 'logger'>,
): Promise<number[]> {
  const killed: number[] = [];
  for (const g of (await scanRunProcesses(deploymentScope(ctx.config))).values()) {
    if (g.taskId !== taskId || g.token === ownToken) continue;
    killed.push(...(await killLostRun(ctx, { ...g, taskId }, opts)));
  }
  return killed;
}

/** How often a running worker looks for leftovers (a /proc scan: cheap at this rate). */
export const LEFTOVER_SWEEP_MS = 60_000;
/** Margin after a spared run's alive key would expire before it is looked at again. */
const RECHECK_MARGIN_MS = 250;

/**
 * Sweeps at once, then every minute; once sooner for a run spared while its worker may already be dead (its
 * alive key outlives it by up to the takeover time): a worker restarted after a crash finds its predecessor's
 * leftovers within seconds, not a minute later. Only once per run: the live runs of the other workers of the
 * node do not make every worker scan /proc every few seconds.
 */
export function startLeftoverSweeps(ctx: JtmContext, opts: LeftoverSweepOptions): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const rechecked = new Set<string>();
  const run = async (): Promise<void> => {
    let next = LEFTOVER_SWEEP_MS;
    try {
      const r = await sweepLeftovers(ctx, opts);
      // Forget runs no longer seen, so that the set stays as small as the node's live runs.
      const seen = new Set(r.spared.map(s => s.token));
      for (const t of rechecked) if (!seen.has(t)) rechecked.delete(t);
      for (const s of r.spared) {
        if (s.ttlMs < 0 || rechecked.has(s.token)) continue;
        rechecked.add(s.token);
        next = Math.min(next, s.ttlMs + RECHECK_MARGIN_MS);
      }
    } catch (err) {
      opts.logger.warn({ err }, 'leftover sweep failed');
    }
    if (stopped) return;
    timer = setTimeout(() => void run(), next);
    timer.unref();
  };
  void run();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
