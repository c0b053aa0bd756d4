import type { JobJson, Queue } from 'bullmq';
import { addStandardJob } from 'bullmq/dist/cjs/scripts/addStandardJob-9.js';

import type { RedisClient } from '../redis/connection.js';
import { runScript } from '../redis/run-script.js';
import { eachOf } from '../redis/scripts.js';
import { TASK_JOB_NAME, jobIdOf, taskJobOptions, type TaskJob } from './job-data.js';

/** BullMQ's addStandardJob script, run for every job of a call (its ARGV: 3 per job). */
const ADD_JOBS = eachOf(addStandardJob.content, 3);

/**
 * Jobs per script run. A run blocks Redis (and the workers' heartbeats) while it lasts: BullMQ's script
 * costs Redis the same looped as called once per job (~100 µs a job on the loaded 2-core test machine, 250
 * jobs took 24–41 ms there; a few tens of µs on an idle one), so a run is kept to a few milliseconds.
 */
const JOBS_PER_RUN = 100;

/**
 * Adds the BullMQ jobs of a batch of tasks (task i on queue `queueOf(i)`, every queue opened on `redis`), in
 * order within each queue. Each job is the one `Queue.addBulk` writes (test/store/submit-jobs.test.ts
 * compares them): BullMQ itself packs its arguments (`addJobToTransaction`, its public insert for flows),
 * and BullMQ's own addStandardJob Lua writes it. What is left out is addBulk's per-job work that a task job
 * does not need — a Job object with its option normalisation and validation, its JSON form, the telemetry
 * span, an ioredis pipeline per queue (which copies every loaded script when built) — and its one EVALSHA
 * per job: here one script run adds up to JOBS_PER_RUN jobs of a queue (scripts.ts eachOf). In a cold
 * `jtm submit -f` of 10,000 tasks those per-job commands were most of the process's CPU.
 */
export async function addTaskJobs(
  redis: RedisClient,
  ids: readonly number[],
  queueOf: (i: number) => Queue<TaskJob>,
): Promise<void> {
  const runs = new Map<Queue<TaskJob>, { keys: string[]; argv: (string | Buffer)[] }>();
  // One timestamp for the batch (addBulk takes Date.now() per job, within the same millisecond or so).
  const timestamp = Date.now();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    const queue = queueOf(i);
    const args = insertArgs(queue, id, timestamp);
    let run = runs.get(queue);
    if (!run) runs.set(queue, (run = { keys: args.slice(0, addStandardJob.keys) as string[], argv: [] }));
    for (let a = addStandardJob.keys; a < args.length; a++) run.argv.push(args[a] as string | Buffer);
  }
  // Each queue's meta hash (its events cap) is written once its connection is ready, chained before this
  // wait: on one connection it reaches Redis before the queue's first job, as with addBulk.
  await Promise.all([...runs.keys()].map(async q => q.waitUntilReady()));
  const step = JOBS_PER_RUN * 3;
  const calls = [...runs.values()].flatMap(({ keys, argv }) => {
    const slices: [string[], (string | Buffer)[]][] = [];
    for (let a = 0; a < argv.length; a += step) slices.push([keys, argv.slice(a, a + step)]);
    return slices;
  });
  // The script is 27 KB: runScript loads it ahead of the runs on a connection's first use, so that a Redis without
  // it gets it once rather than with each of a submit's hundreds of runs (each NOSCRIPT would fall back to EVAL).
  const replies = await Promise.all(
    calls.map(async ([keys, argv]) => runScript<unknown[]>(redis, ADD_JOBS, keys, argv)),
  );
  for (const reply of replies.flat()) {
    // BullMQ's scripts answer an error as a negative code (e.g. a missing parent: none here).
    if (typeof reply === 'number' && reply < 0)
      throw new Error(`adding task jobs: BullMQ error code ${reply}`);
  }
}

/**
 * The KEYS and ARGV of BullMQ's addStandardJob for a task's job, as BullMQ builds them: its insert is
 * given a stand-in transaction that keeps the command instead of sending it.
 */
function insertArgs(queue: Queue<TaskJob>, id: number, timestamp: number): (string | Buffer)[] {
  let captured: { name: string; args: (string | Buffer)[] } | undefined;
  const keep = {
    runCommand(name: string, args: (string | Buffer)[]) {
      captured = { name, args };
      return keep;
    },
  };
  // What BullMQ's Job constructor makes of the options addBulk is given: `attempts: 0` first.
  const job = {
    name: TASK_JOB_NAME,
    data: JSON.stringify({ id } satisfies TaskJob),
    opts: { attempts: 0, ...taskJobOptions(id) },
    timestamp,
  } as JobJson;
  // The command is built synchronously; the promise settles with the stand-in's reply, of no interest.
  void queue.backend
    .addJobToTransaction(
      keep as unknown as Parameters<typeof queue.backend.addJobToTransaction>[0],
      job,
      jobIdOf(id),
      {},
      queue.keys,
    )
    .catch(() => undefined);
  if (
    captured?.name.split(':')[0] !== addStandardJob.name ||
    captured.args.length !== addStandardJob.keys + 3
  )
    throw new Error(
      `adding task jobs: BullMQ sent ${captured?.name ?? 'nothing'}, not ${addStandardJob.name}`,
    );
  return captured.args;
}
