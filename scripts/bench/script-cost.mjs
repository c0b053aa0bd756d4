// JTM's own Lua scripts for N task lifecycles, driven in-process through TaskStore on a given Redis, phase by
// phase: create-tasks (chunks of 250), transition-many to pending, start-task, the end transition (to success,
// fenced, with the fields a worker writes at a short task's end). Prints the Redis time of each phase
// (commandstats usec ÷ N) and, with --callgrind-pid, dumps the redis-server's callgrind counters after each
// phase (`callgrind_control -d`), so the instructions per task of each script can be compared before and after
// a change precisely: instruction counts do not move with the machine's load, times do.
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p redis-server --port 7790 --save '' &
//   node scripts/bench/script-cost.mjs --port 7790 --n 2000 --callgrind-pid <pid>
//   callgrind_annotate /tmp/cg.<pid>.<k> | head   (one file per phase, in order)
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

import { jtmModule, openJtm } from './lib/jtm.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '6379' },
    n: { type: 'string', default: '2000' },
    'callgrind-pid': { type: 'string' },
  },
});
const N = Number(values.n);
const CHUNK = 250;
const { TaskStatus } = await jtmModule('task-status.js');
// As submit calls it: a new id's job must be free too (TaskStore.createMany); undefined in older builds.
const { JOB_ID_PREFIX } = await jtmModule('tasks/job-data.js');
const { ctx, close } = await openJtm(`redis://127.0.0.1:${values.port}`, { vars: { JTM_PREFIX: '{sc}' } });
const store = ctx.tasks;

const dump = phase => {
  if (values['callgrind-pid']) execFileSync('callgrind_control', ['-d', phase, values['callgrind-pid']]);
};
// Script time: EVALSHA, and EVAL for a script's first run on a fresh server (NOSCRIPT, then EVAL).
const evalshaUsec = async () =>
  (await ctx.redis.info('commandstats'))
    .split('\r\n')
    .filter(l => /^cmdstat_eval(sha)?:/.test(l))
    .reduce((s, l) => s + Number(/usec=(\d+)/.exec(l)[1]), 0);
const phases = [];
async function phase(name, fn) {
  await ctx.redis.config('RESETSTAT');
  dump(`before-${name}`);
  await fn();
  dump(name);
  phases.push({ name, usPerTask: (await evalshaUsec()) / N });
}

// Loaded first: a script's first run in each phase would otherwise be an EVAL of its whole text (NOSCRIPT).
for (const text of Object.values(await jtmModule('redis/scripts.js')))
  if (typeof text === 'string') await ctx.redis.script('LOAD', text);

const submitId = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
await ctx.redis.set(ctx.keys.submit(submitId), 1);
// The record a `jtm submit -f` line of /bin/true gets (src/tasks/submit-task.ts).
const record = {
  command: '/bin/true',
  pool: 'bench0',
  cwd: '/tmp',
  max_retries: 0,
  submit_host: 'bench-host',
  submit_id: submitId,
};
const chunks = xs =>
  Array.from({ length: Math.ceil(xs.length / CHUNK) }, (_, i) => xs.slice(i * CHUNK, (i + 1) * CHUNK));
let ids = [];
const worker = 'vm-bench-e1';
await phase('create-tasks', async () => {
  const lists = chunks(Array.from({ length: N }, () => record));
  ids = (
    await Promise.all(lists.map(l => store.createMany(l, undefined, { jobIdPrefix: JOB_ID_PREFIX })))
  ).flat();
});
await phase('transition-many', async () => {
  await Promise.all(
    chunks(ids).map(c => store.transitionMany(c, [TaskStatus.queued], TaskStatus.pending, 'queued on pool')),
  );
});
const tokens = new Map(ids.map(id => [id, randomBytes(8).toString('hex')]));
const inBatches = async fn => {
  for (const c of chunks(ids)) await Promise.all(c.map(fn));
};
await phase('start-task', () =>
  inBatches(async id => {
    const r = await store.start(id, worker, 'bench-host', tokens.get(id), `job-token-${id}`);
    if (r.kind !== 'started') throw new Error(`task ${id} not started: ${r.kind}`);
  }),
);
await phase('transition-end', () =>
  inBatches(async id => {
    const r = await store.transitionFenced(
      id,
      { workerId: worker, runToken: tokens.get(id) },
      TaskStatus.success,
      'exit code 0',
      {
        exit_code: 0,
        pid: 4000 + (id % 30000),
        accounting: 'proc',
        peak_rss_mb: 0,
        cpu_time_s: 0,
        stdout_file: '/tmp/stdout',
        output_bytes: 0,
      },
    );
    if (!r.done) throw new Error(`task ${id} not ended`);
  }),
);
for (const p of phases)
  console.log(`${p.name.padEnd(16)} ${p.usPerTask.toFixed(2)} µs per task (script time)`);
console.log(`total            ${phases.reduce((s, p) => s + p.usPerTask, 0).toFixed(2)} µs`);
if (values['callgrind-pid'])
  console.log('instructions per task: callgrind totals of the dumps named after each phase ÷ N');
const sample = await ctx.redis.hgetall(ctx.keys.task(ids[0]));
console.log(
  `record: ${Object.keys(sample).length} fields, MEMORY USAGE ${await ctx.redis.memory('USAGE', ctx.keys.task(ids[0]))} B`,
);
await ctx.redis.flushall();
await close();
