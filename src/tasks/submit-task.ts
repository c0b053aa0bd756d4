import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import {
  forPool,
  forShard,
  recordShardCount,
  withContext,
  type ContextSource,
  type JtmContext,
} from '../context.js';
import { retryWhile } from '../redis/retry-unreachable.js';
import { CREATE_CALL_TTL_MS } from '../redis/scripts.js';
import { connectionFailure, isConnectionError, redisLocation } from '../redis/connection.js';
import {
  isAuthError,
  RedisAuthError,
  SubmitIncompleteError,
  SubmitPartlyCommittedError,
  SubmitUnsettledError,
  toError,
} from '../errors.js';
import type { Queue } from 'bullmq';

import { openPoolQueue } from './pool-queue.js';
import { touchPools } from '../pools/pool-registry.js';
import { poolSpecsOf } from '../pools/call-sizes.js';
import { JOB_ID_PREFIX, type JobSource, type TaskJob } from './job-data.js';
import { addTaskJobs } from './submit-jobs.js';
import { abortUnlessCommitted, commitSubmit, PENDING_REASON } from './submit-commit.js';
import { CommitGate } from './commit-gate.js';
import { TaskStatus } from './status.js';
import type { NewTask } from './task-spec.js';
import { isDynamicSpec } from '../pool-spec.js';

/**
 * Tasks per create/transition script run: big enough that a bulk submit is a few round trips, small
 * enough that one run blocks Redis (and the workers' heartbeats) for a few milliseconds at most.
 */
const CHUNK = 250;

/** Tasks whose jobs are added together (all their pools at once): a few create chunks' worth. */
const JOB_BATCH = 1000;

/**
 * Script runs (create, transition) of one submit in flight at once, and job batches: enough that Redis always
 * has the next one queued, few enough that no command waits long behind the others. With every chunk sent at
 * once, a command at the tail of a 200,000-task submit waited for all the others and a Redis Cluster client's
 * command limit (10 × JTM_CONNECT_TIMEOUT) failed the submit (exit 255); the client's memory grew with it.
 */
const SCRIPTS_IN_FLIGHT = 8;
const JOB_BATCHES_IN_FLIGHT = 3;

/** Failures of submits that sent no commit: nothing of them runs (their records, if any, are failed). */
const beforeCommit = new WeakSet<object>();
const uncommitted = (err: Error): Error => {
  beforeCommit.add(err);
  return err;
};

/**
 * Whether a failed submitTasks may be made again without queueing a task twice: Redis became unreachable before
 * its commit was sent. (Its records, if some were written, are taken over by the next try of submitTasksRetrying,
 * or failed: by it, or by reconciliation.)
 */
export function submitMayRetry(err: unknown): boolean {
  return typeof err === 'object' && err !== null && beforeCommit.has(err);
}

/**
 * How long the tries of one submit go on with the same plan (submit id, create-call tokens): well within the life
 * of the create-call keys its chunks wrote (CREATE_CALL_TTL_MS), so that a chunk written is always answered again
 * and never written twice. Past it (a JTM_SUBMIT_RETRY of minutes), the next try fails the plan's records and
 * makes a new one.
 */
const PLAN_REUSE_MS = CREATE_CALL_TTL_MS / 2;

/**
 * submitTasks, made again while Redis is unreachable for up to `retryMs` (JTM_SUBMIT_RETRY), as long as
 * nothing of the failed try can run (no commit sent): Cromwell fails a call whose submit exits non-zero, and a
 * Redis restart or failover of a few seconds failed every call submitted in it (adversary 7, H9). `jtm submit`
 * and the API's submit() both run this. `onRetry` is told of each try that will be made again.
 *
 * Each try is the same submit (its plan: submit id, records, create-call tokens): a chunk of records an earlier
 * try wrote is answered its ids again, its jobs added again are the same jobs, and the commit covers them. A try
 * that fails and will be tried again leaves its records to the next one; only the last fails them. Before, each
 * try was a new submit: a submit whose connection failed after its records were written printed the retry's
 * ids and left the first try's records, failed "submit did not complete" ~90 s later by the manager (or queued
 * for ever without one): a phantom failed task in `jtm report`, ids burnt (adversary 26 F6). A try whose commit
 * was sent ends its plan: the commit key then holds the outcome (taken back, or committed on some shards).
 */
export async function submitTasksRetrying(
  src: ContextSource,
  tasks: readonly NewTask[],
  retryMs: number,
  onRetry?: (err: unknown, tries: number) => void,
  gate = new CommitGate(),
): Promise<number[]> {
  let plan: SubmitPlan | undefined;
  return retryWhile(
    async more => {
      const back = gate.closedBy;
      // Taken back between tries (a signal while Redis was unreachable): the earlier tries' records are failed.
      if (back) {
        if (plan && !plan.spent) await retirePlan(await src.context(), plan, back);
        throw back;
      }
      // Not connected yet: nothing was written.
      const ctx = await src.context().catch(async (err: unknown) => {
        await src.resetContext();
        throw isConnectionError(err) && err instanceof Error
          ? Object.assign(err, { beforeWrite: true })
          : err;
      });
      if (plan && !plan.spent && Date.now() - plan.bornAt > PLAN_REUSE_MS) await retirePlan(ctx, plan);
      if (!plan || plan.spent) plan = newPlan(ctx, tasks);
      try {
        // Taken back: no next try, so a failure leaves no record for one (they are failed).
        return await submitTry(ctx, plan, () => !gate.closedBy && more(), gate);
      } catch (err) {
        if (isConnectionError(err)) await src.resetContext();
        const unknown = unknownCommits.get(err as object);
        if (!unknown) throw err;
        // The commit was sent and its answer lost: settled on a new connection, while Redis is unreachable for
        // up to retryMs; a submit taken back is failed and made again (uncommitted), a committed one succeeds.
        try {
          return await retryWhile(() => withContext(src, fresh => settleLostCommit(fresh, unknown, err)), {
            retryable: e => isConnectionError(e) && !submitMayRetry(e),
            retryMs,
            firstPauseMs: 100,
            maxPauseMs: 1000,
            onRetry,
          });
        } catch (settleErr) {
          // Still not known: the ids are given (their tasks end one way or the other, never silently).
          if (isConnectionError(settleErr) && !submitMayRetry(settleErr))
            throw new SubmitUnsettledError(idsInOrder(unknown.groups, unknown.count), settleErr);
          throw settleErr;
        }
      }
    },
    {
      retryable: err =>
        !gate.closedBy &&
        isConnectionError(err) &&
        (submitMayRetry(err) || (err as { beforeWrite?: boolean }).beforeWrite === true),
      retryMs,
      firstPauseMs: 100,
      maxPauseMs: 1000,
      onRetry,
    },
  ).catch((err: unknown) => {
    // Taken back, so no commit was sent: whatever else failed meanwhile, none of its tasks runs, and that is
    // what the caller is told (jtm submit: the signal's line and exit code).
    throw gate.closedBy ?? err;
  });
}

/**
 * Submits validated tasks: each gets a global id and a record (queued, carrying the submit's id), then its
 * BullMQ job on the pool's queue (job id = task id); then one write commits the whole submit (its commit
 * key), and the records move to pending. A worker starts a queued task only once its submit is committed, so
 * a submit that fails or is killed before the commit leaves nothing that runs: its records are failed here
 * when possible, else by the manager's reconciliation ("submit did not complete"). Resolves only when all
 * of that is in Redis. Records and transitions go in chunks, one script run each, a few in flight at once; each
 * chunk's jobs are added as soon as its records exist (writeGroup). One try: submitTasksRetrying makes more.
 */
export async function submitTasks(anyShard: JtmContext, tasks: readonly NewTask[]): Promise<number[]> {
  return submitTry(anyShard, newPlan(anyShard, tasks), () => false, new CommitGate());
}

/**
 * What every try of one submit shares: its id, its records, and the ids each chunk's create-tasks call was
 * answered, by any try (per shard, per chunk). A chunk is sent with the token `<submit id>:<chunk>` (the
 * create-call key of the shard), so the same chunk sent by a later try is answered those ids and writes nothing.
 * The token holds the submit id (random): no other submit's answer is ever taken for it.
 */
interface SubmitPlan {
  readonly submitId: string;
  readonly records: readonly NewRecord[];
  /** Date.now() when made: tried again only within PLAN_REUSE_MS. */
  readonly bornAt: number;
  readonly known: Map<number, Map<number, number[]>>;
  /** Not to be tried again: its commit was sent (the commit key holds the outcome), or its records were failed. */
  spent: boolean;
}

function newPlan(ctx: JtmContext, tasks: readonly NewTask[]): SubmitPlan {
  const submitHost = hostname();
  const submitId = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
  const records: NewRecord[] = tasks.map(t => ({
    command: t.command,
    pool: t.pool,
    pool_spec: t.poolSpec,
    cwd: t.cwd,
    stdout: t.stdout,
    stderr: t.stderr,
    output_files: t.outputFiles,
    allow_empty_outputs: t.allowEmptyOutputs,
    timeout_ms: t.timeoutMs,
    mem_limit: t.memLimit,
    rc_file: t.rcFile,
    cromwell_job_id: t.cromwellJobId,
    max_retries: ctx.config.taskRetries,
    submit_host: submitHost,
    submit_id: submitId,
  }));
  return { submitId, records, bornAt: Date.now(), known: new Map(), spent: false };
}

/** The ids of `plan`'s records known to exist, per shard. */
function knownRecords(ctx: JtmContext, plan: SubmitPlan): { ctx: JtmContext; ids: number[] }[] {
  return [...plan.known].map(([shard, byChunk]) => ({
    ctx: forShard(ctx, shard),
    ids: [...byChunk.values()].flat(),
  }));
}

/** A plan not to be tried again, its commit not sent: its records are failed (best effort: else reconciliation). */
async function retirePlan(
  ctx: JtmContext,
  plan: SubmitPlan,
  why = new Error('its tries went on past the life of their create-call keys'),
): Promise<void> {
  plan.spent = true;
  await failRecords(knownRecords(ctx, plan), why);
}

/**
 * One try of a submit (`plan`). `retrying`: whether a connection failure before the commit would be tried
 * again; then the records are left for the next try, not failed.
 */
async function submitTry(
  anyShard: JtmContext,
  plan: SubmitPlan,
  retrying: () => boolean,
  gate: CommitGate,
): Promise<number[]> {
  const ctx = anyShard;
  const { submitId, records } = plan;
  // Each pool's shard gets its tasks' records, jobs and its own commit key (docs/scaling.md); with one
  // shard this is one group holding every task, in order.
  const groups = byShard(ctx, records);
  await recordShardCount(ctx).catch(async (err: unknown) => {
    if (!isConnectionError(err)) throw err;
    await leaveUncommitted(ctx, plan, err, retrying);
  });
  // Whether the commit may have reached Redis: before it, a failed submit leaves nothing that runs, and may be
  // made again (submitMayRetry); after it, only once the commit has been settled as taken back (settleCommit).
  let committing = false;
  const queues = new PoolQueues();
  const written = await Promise.allSettled(groups.map(async g => writeGroup(g, queues, plan, gate)));
  try {
    const failed = written.find(r => r.status === 'rejected');
    if (failed) throw failed.reason;
    // Taken back (a signal): the commit is never sent, so nothing of the submit runs. Checked and marked sent
    // in one step, with nothing awaited between it and the commit's send below.
    if (!gate.pass()) throw gate.closedBy;
    // The commit point: from here on the tasks may run. It outlives any queued record of the submit. With
    // several shards there is one commit key per shard, written together once every shard has its jobs.
    committing = true;
    plan.spent = true;
    const committed = await Promise.all(
      groups.map(g => commitSubmit(g.ctx, submitId, g.ids.length, g.ids.slice(0, CHUNK))),
    );
    if (committed.includes(false)) throw new Error('the submit was taken back before its commit');
  } catch (err) {
    await queues.close();
    if (committing) {
      // Sent: it may have been applied (its tasks may be running) whatever the error says. Settled here while
      // the connection answers; else by the caller on a new connection (submitTasksRetrying).
      await settleCommit(ctx, groups, submitId, err);
    } else {
      await leaveUncommitted(ctx, plan, err, retrying);
    }
  }
  return finishSubmit(ctx, groups, queues, records.length);
}

/**
 * A failure before any commit was sent: nothing of the submit runs. Redis unreachable and the submit to be tried
 * again (`retrying`): its records are left to the next try, which takes them over (the plan). Else they are failed
 * (every record of the plan, whichever try wrote it) and the submit fails.
 */
async function leaveUncommitted(
  ctx: JtmContext,
  plan: SubmitPlan,
  err: unknown,
  retrying: () => boolean,
): Promise<never> {
  // What the caller is told; retried only if it still reads as Redis unreachable (not a refusal heard meanwhile).
  const failure = isConnectionError(err) ? await connectionFailure(ctx.redis, ctx.config, err) : undefined;
  if (!failure || !isConnectionError(failure) || !retrying()) {
    plan.spent = true;
    await failRecords(knownRecords(ctx, plan), err);
  }
  if (failure) throw uncommitted(failure);
  // Refused for the user's rights (a read-only ACL user: NOPERM on the first script): said as every command says
  // it, naming the user's rights to check, not as a submit that broke off (adversary 40 L5).
  if (isAuthError(err)) throw new RedisAuthError(redisLocation(ctx.config), err);
  throw new SubmitIncompleteError(err);
}

/**
 * A failure once the commit was sent: each shard's commit is settled (abortUnlessCommitted). Resolves when every
 * shard's was applied (the submit succeeded); else the shards taken back have their records failed and it throws:
 * uncommitted when none was applied (the submit may be made again), SubmitPartlyCommittedError otherwise. When
 * Redis does not answer, it throws the connection failure marked with what to settle (unknownCommits).
 */
async function settleCommit(
  ctx: JtmContext,
  groups: readonly ShardGroup[],
  submitId: string,
  err: unknown,
): Promise<void> {
  let outcomes: Outcome[];
  try {
    outcomes = await abortAll(groups, submitId);
  } catch (settleErr) {
    if (!isConnectionError(settleErr) && !isConnectionError(err)) throw settleErr;
    const failure = await connectionFailure(ctx.redis, ctx.config, isConnectionError(err) ? err : settleErr);
    unknownCommits.set(failure, {
      submitId,
      count: groups.reduce((n, g) => n + g.ids.length, 0),
      groups: groups.map(g => ({ pool: (g.records[0] as NewRecord).pool, ids: g.ids, at: g.at })),
    });
    throw failure;
  }
  await concludeSettle(groups, outcomes, err, async () =>
    isConnectionError(err) ? connectionFailure(ctx.redis, ctx.config, err) : toError(err),
  );
}

/** What a submit whose commit answer was lost needs to settle it on another connection. */
interface UnknownCommit {
  submitId: string;
  count: number;
  /** Per shard: a pool of it (which names the shard), its task ids and their places in the submit. */
  groups: { pool: string; ids: number[]; at: number[] }[];
}
const unknownCommits = new WeakMap<object, UnknownCommit>();

/** settleCommit on a new connection (submitTasksRetrying): the submit's ids when its commit was applied. */
async function settleLostCommit(ctx: JtmContext, u: UnknownCommit, err: unknown): Promise<number[]> {
  const shards = u.groups.map(g => ({ ...g, ctx: forPool(ctx, g.pool) }));
  await concludeSettle(shards, await abortAll(shards, u.submitId), err, async () => toError(err));
  // Committed: marked pending for the record's sake (reconciliation does it otherwise), as finishSubmit does.
  await Promise.all(shards.map(g => markPending(g.ctx, g.ids)));
  return idsInOrder(shards, u.count);
}

type Outcome = 'aborted' | 'committed';

/** Each shard's commit settled: taken back unless it was applied (abortUnlessCommitted). */
function abortAll(shards: readonly { ctx: JtmContext }[], submitId: string): Promise<Outcome[]> {
  return Promise.all(shards.map(g => abortUnlessCommitted(g.ctx, submitId)));
}

/** The ids of a submit in the order of its tasks, from each shard's ids and their places (`at`). */
function idsInOrder(shards: readonly { ids: number[]; at: number[] }[], count: number): number[] {
  const ids = new Array<number>(count);
  for (const g of shards) g.at.forEach((at, i) => (ids[at] = g.ids[i] as number));
  return ids;
}

/** The queued records of `shards` failed: nothing of them can start now. */
async function failRecords(
  shards: readonly { ctx: JtmContext; ids: number[] }[],
  err: unknown,
): Promise<void> {
  const reason = `submit failed: ${toError(err).message}`;
  await Promise.all(
    shards.map(g =>
      settleInWindow(chunks(g.ids), SCRIPTS_IN_FLIGHT, c =>
        g.ctx.tasks.transitionMany(c, [TaskStatus.queued], TaskStatus.failed, reason),
      ),
    ),
  );
}

/**
 * After each shard's commit was settled: nothing to do when all were applied; else the records of the shards
 * taken back are failed (none of their tasks can start now) and the submit fails.
 */
async function concludeSettle(
  shards: readonly { ctx: JtmContext; ids: number[] }[],
  outcomes: readonly Outcome[],
  err: unknown,
  failure: () => Promise<Error>,
): Promise<void> {
  const aborted = shards.filter((_, i) => outcomes[i] === 'aborted');
  if (aborted.length === 0) return;
  await failRecords(aborted, err);
  if (aborted.length < shards.length) {
    throw new SubmitPartlyCommittedError(
      shards.filter((_, i) => outcomes[i] === 'committed').flatMap(g => g.ids),
      aborted.flatMap(g => g.ids),
      err,
    );
  }
  const f = await failure();
  if (isConnectionError(err)) throw uncommitted(f);
  throw new SubmitIncompleteError(err);
}

/** Queued → pending for the record only (a worker starts a committed queued task the same). */
async function markPending(
  ctx: JtmContext,
  ids: readonly number[],
): Promise<PromiseSettledResult<unknown>[]> {
  return settleInWindow(chunks(ids), SCRIPTS_IN_FLIGHT, c =>
    ctx.tasks.transitionMany(c, [TaskStatus.queued], TaskStatus.pending, PENDING_REASON),
  );
}

/** The end of a committed submit: pending marks, the manager told of dynamic pools; the ids in submit order. */
async function finishSubmit(
  ctx: JtmContext,
  groups: readonly ShardGroup[],
  queues: PoolQueues,
  count: number,
): Promise<number[]> {
  const closed = queues.close();
  // Committed: the tasks will run whatever happens now, so the submit succeeds. A dynamic pool's allocations
  // are requested by a manager: told now (with the marking below, not after it) rather than at its next
  // sweep, since a new allocation's first task waits for this. Best effort: the sweep provisions anyway.
  const told = Promise.all(
    groups
      .filter(g => g.records.some(t => isDynamicSpec(t.pool_spec)))
      .map(g => g.ctx.redis.publish(g.ctx.keys.provisionRequests, 'submit').catch(() => 0)),
  );
  // Marking them pending is for the record only (a worker starts a committed queued task the same); if it
  // fails, reconciliation does it. The commit marked each shard's first chunk.
  const marked = (await Promise.all(groups.map(g => markPending(g.ctx, g.ids.slice(CHUNK))))).flat();
  await Promise.all([told, closed]);
  const unmarked = marked.find(r => r.status === 'rejected');
  if (unmarked)
    ctx.logger.warn({ err: toError(unmarked.reason).message }, 'tasks left queued; they run anyway');
  const ids = idsInOrder(groups, count);
  ctx.logger.debug({ count: ids.length, first: ids[0] }, 'tasks submitted');
  return ids;
}

/** The tasks of one shard: their context, records, places in the submit, and ids once created. */
interface ShardGroup {
  ctx: JtmContext;
  records: NewRecord[];
  at: number[];
  ids: number[];
}

function byShard(ctx: JtmContext, records: readonly NewRecord[]): ShardGroup[] {
  const groups = new Map<JtmContext, ShardGroup>();
  records.forEach((r, at) => {
    const shard = forPool(ctx, r.pool);
    let g = groups.get(shard);
    if (!g) groups.set(shard, (g = { ctx: shard, records: [], at: [], ids: [] }));
    g.records.push(r);
    g.at.push(at);
  });
  return [...groups.values()];
}

/** The record fields submit writes (snake_case, as stored). */
type NewRecord = Omit<JobSource, 'id'> & {
  pool: string;
  pool_spec: NewTask['poolSpec'];
  rc_file?: string;
  cromwell_job_id?: string;
  max_retries: number;
  submit_host: string;
  submit_id: string;
};

/**
 * Writes one shard's records and jobs, overlapped: SCRIPTS_IN_FLIGHT record chunks are in flight at once, and as
 * each chunk's ids come back (in order: one connection), its tasks' jobs are added, a batch of JOB_BATCH tasks
 * at a time, while Redis still runs the next chunks' create scripts (at most JOB_BATCHES_IN_FLIGHT batches: a
 * chunk is sent only once the oldest batch is written beyond that). A job never goes before its record (its
 * ids come from that record's script). Resolves when all are written; on a failure it sends no more chunks,
 * stops adding jobs and rejects once nothing is in flight, `g.ids` holding every record this try created, and
 * `plan.known` every record of the submit's tries (for the caller's undo).
 */
async function writeGroup(
  g: ShardGroup,
  queues: PoolQueues,
  plan: SubmitPlan,
  gate: CommitGate,
): Promise<void> {
  const recordChunks = chunks(g.records);
  const shard = g.ctx.tasks.shard;
  let known = plan.known.get(shard);
  if (!known) plan.known.set(shard, (known = new Map()));
  const answered = known;
  // The id counter behind kept records (lost alone, or gone back): the chunk was written on ids past them.
  const onIdsTaken = (raise: { taken: number; counter: number; raisedTo: number }): void =>
    g.ctx.logger.warn(
      { ...raise, shard: g.ctx.tasks.shard },
      'the task id counter was behind ids still in use (it was lost or went back while task records were kept): raised past them, no id is handed out twice',
    );
  // A chunk an earlier try of the submit wrote is answered the same ids (its token): else its create-call key was
  // lost, and the earlier block (same submit id, maybe with jobs) must never be committed with this one: both
  // are failed, and the submit fails (not retried).
  const create = (k: number): Promise<{ ids: number[] } | { err: unknown }> =>
    g.ctx.tasks
      .createMany(recordChunks[k]!, undefined, {
        jobIdPrefix: JOB_ID_PREFIX,
        onIdsTaken,
        callToken: `${plan.submitId}:${k}`,
        submitId: plan.submitId,
      })
      .then(
        ids => {
          const before = answered.get(k);
          if (before === undefined || before[0] === ids[0]) {
            answered.set(k, ids);
            return { ids };
          }
          answered.set(k, [...before, ...ids]);
          const lost = `records ${before[0]}… of this submit were written again as ${ids[0]}… (its create-call key was lost)`;
          return { err: new Error(lost) };
        },
        (err: unknown) => ({ err }),
      );
  const created = recordChunks.slice(0, SCRIPTS_IN_FLIGHT).map((_, k) => create(k));
  const adds: Promise<void>[] = [];
  let failure: { err: unknown } | undefined;
  let batch: { records: NewRecord[]; ids: number[] } = { records: [], ids: [] };
  for (let k = 0; k < created.length; k++) {
    const r = await created[k]!;
    // Taken back: no more chunks or jobs (fewer records to fail; the ones in flight are waited for).
    if (gate.closedBy) failure ??= { err: gate.closedBy };
    // The next chunk, once the job batches have kept up; none once the submit failed (fewer records to undo).
    const next = k + SCRIPTS_IN_FLIGHT;
    if (next < recordChunks.length && !failure && !('err' in r)) {
      if (adds.length >= JOB_BATCHES_IN_FLIGHT) await adds[adds.length - JOB_BATCHES_IN_FLIGHT];
      if (!failure) created.push(create(next));
    }
    if ('err' in r) {
      failure ??= r;
      continue;
    }
    g.ids.push(...r.ids);
    if (failure) continue;
    batch.records.push(...recordChunks[k]!);
    batch.ids.push(...r.ids);
    if (batch.ids.length >= JOB_BATCH || k === recordChunks.length - 1) {
      const writes = [addJobs(g.ctx, batch.records, batch.ids, queues)];
      // The shard's pool registry entries, one transaction, in flight with its first jobs: both are in
      // Redis before the commit. A pool keeps the longest time and the most memory and CPUs given (MERGE_POOL_SPEC).
      if (adds.length === 0) writes.push(touchPools(g.ctx, poolSpecsOf(g.records)));
      // Caught here and looked at below: a rejection must not go unhandled while later chunks are awaited.
      adds.push(...writes.map(w => w.catch((err: unknown) => void (failure ??= { err }))));
      batch = { records: [], ids: [] };
    }
  }
  await Promise.all(adds);
  if (failure) throw failure.err;
}

/** The BullMQ queues of one submit, opened once per pool (a Queue writes its meta hash when opened). */
class PoolQueues {
  private readonly open = new Map<JtmContext, Map<string, Queue<TaskJob>>>();

  get(ctx: JtmContext, pool: string): Queue<TaskJob> {
    let byPool = this.open.get(ctx);
    if (!byPool) this.open.set(ctx, (byPool = new Map()));
    let queue = byPool.get(pool);
    if (!queue) byPool.set(pool, (queue = openPoolQueue(ctx, pool)));
    return queue;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.open.values()].flatMap(m => [...m.values()].map(q => q.close())));
  }
}

/** The jobs of a batch, every pool's at once (the order of jobs within a pool is the order of the tasks). */
async function addJobs(
  ctx: JtmContext,
  tasks: readonly NewRecord[],
  ids: readonly number[],
  queues: PoolQueues,
): Promise<void> {
  await addTaskJobs(ctx.redis, ids, i => queues.get(ctx, (tasks[i] as NewRecord).pool));
}

/**
 * `run` over `items`, at most `width` at a time, in order; the outcome of each, as Promise.allSettled gives it.
 */
async function settleInWindow<T, R>(
  items: readonly T[],
  width: number,
  run: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const out: PromiseSettledResult<R>[] = new Array(items.length);
  let nextItem = 0;
  const lane = async (): Promise<void> => {
    while (nextItem < items.length) {
      const at = nextItem++;
      try {
        out[at] = { status: 'fulfilled', value: await run(items[at] as T) };
      } catch (reason) {
        out[at] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  return out;
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}
