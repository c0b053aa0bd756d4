// The chaos harness of the reliability suite (test/reliability/chaos.test.ts runs bounded versions,
// scripts/chaos.mjs the full one). It submits tasks of random short durations and exit codes to a pool
// served by several workers, injects faults (by default: SIGKILL of a worker's own pid, starting a
// replacement; see FAULTS for the others: paused workers, a paused manager, Redis paused past the job lock,
// Redis killed -9 and restarted on its AOF), kills random tasks and, when this build has `jtm manager`,
// restarts the manager; then it checks that every task reached exactly one final status that matches what
// happened to it, that this status is the result of the execution that owned the task (by its token), that
// no task ever ran twice at once, and that no task of a failed submit ever ran.
//
// Plain JavaScript on top of the built CLI (dist/): every process is a real `jtm` process, as on a site.
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { runProcess } from './run-process.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'run.js');

/** Deterministic PRNG (mulberry32), so that a failing run can be replayed with its seed. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Whether this build has a command (the manager lives on another branch until merged). */
export function hasCommand(name) {
  try {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8'));
    return Object.prototype.hasOwnProperty.call(manifest.commands ?? {}, name);
  } catch {
    return existsSync(join(ROOT, 'dist', 'commands', `${name}.js`));
  }
}

/** Runs one jtm command to its end. */
export function jtm(args, env, timeoutMs = 60_000) {
  return runProcess(process.execPath, [BIN, ...args], { env, cwd: ROOT, timeoutMs });
}

/** Starts a long-running jtm command whose output goes to a log file. */
export function startDaemon(args, env, logFile) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env,
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const write = d => appendFileSync(logFile, d);
  child.stdout.on('data', write);
  child.stderr.on('data', write);
  const exited = new Promise(r => child.on('exit', (code, signal) => r({ code, signal })));
  return {
    child,
    exited,
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

/** How many runs a worker's log says it stopped (their trees killed) because its lease was lapsing. */
function fencedRuns(logFile) {
  try {
    return readFileSync(logFile, 'utf8').split('run stopped before a takeover').length - 1;
  } catch {
    return 0;
  }
}

/**
 * The command of one chaos task. Before it starts it looks for a live earlier run of the same task (a pid
 * from its marker file without an end line, still running with this task's id in its environment) and
 * writes an `X` line if it finds one: two live executions at once. Then `S pid ns token` (the execution
 * token JTM gives the run, JTM_TASK_TOKEN), a `T pid ns` tick every quarter second, and `E pid ns token
 * exit`: the span of every run, ended or killed, is known to within a tick.
 */
export function markerCommand(markerDir, seconds, exitCode) {
  const m = `'${markerDir}'/"$JTM_TASK_ID"`;
  const ticks = Math.floor(seconds / TICK_S);
  const rest = seconds - ticks * TICK_S;
  return [
    `m=${m}`,
    'if [ -f "$m" ]; then while read -r k p _; do',
    '  if [ "$k" = S ] && ! grep -q "^E $p " "$m"; then',
    '    st=$(cut -d" " -f3 /proc/$p/stat 2>/dev/null)',
    '    if [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != T ] && tr "\\0" "\\n" < /proc/$p/environ 2>/dev/null | grep -qx "JTM_TASK_ID=$JTM_TASK_ID"; then echo "X $p $$" >> "$m"; fi',
    '  fi',
    'done < "$m"; fi',
    'echo "S $$ $(date +%s%N) $JTM_TASK_TOKEN" >> "$m"',
    `for _ in $(seq 1 ${ticks}); do sleep ${TICK_S}; echo "T $$ $(date +%s%N)" >> "$m"; done`,
    `sleep ${rest.toFixed(2)}`,
    `echo "E $$ $(date +%s%N) $JTM_TASK_TOKEN ${exitCode}" >> "$m"`,
    `exit ${exitCode}`,
  ].join('\n');
}

const TICK_S = 0.25;

/**
 * Runs of one task from its marker file: [{pid, token, start, last, end?, exit?}] (last: the latest line of
 * the run, its end or its last tick) plus overlap detections.
 */
export function readMarker(path) {
  const runs = new Map();
  const overlaps = [];
  if (!existsSync(path)) return { runs: [], overlaps };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [k, pid, t, token, exit] = line.split(' ');
    const run = runs.get(pid);
    if (k === 'S')
      runs.set(pid, { pid: Number(pid), token, start: BigInt(t), last: BigInt(t), end: undefined });
    else if (k === 'T' && run) run.last = BigInt(t);
    else if (k === 'E' && run) {
      run.end = BigInt(t);
      run.last = run.end;
      run.exit = Number(exit);
    } else if (k === 'X') overlaps.push(line);
  }
  return { runs: [...runs.values()].sort((a, b) => (a.start < b.start ? -1 : 1)), overlaps };
}

/** Pids of a process and all its descendants (from /proc), the process first, each before its children. */
export function processTree(root) {
  const children = childrenByParent();
  const out = [];
  const walk = pid => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** The direct children of a process (from /proc). */
function childrenOf(pid) {
  return childrenByParent().get(pid) ?? [];
}

function childrenByParent() {
  const children = new Map();
  for (const pid of readdirSync('/proc').filter(p => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(pid));
    } catch {
      // gone
    }
  }
  return children;
}

function signal(pids, sig) {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // gone
    }
  }
}

/**
 * Fault kinds (option `faults`, taken in turn, one per round, with a random victim):
 * - worker-kill: SIGKILL of a worker's own pid (as the OOM killer does; its pty host and tasks are not
 *   signalled), a replacement worker is started;
 * - worker-stop: SIGSTOP of a worker's own pid for `pauseMs`, then SIGCONT (its pty host and tasks run on);
 * - worker-freeze: SIGSTOP of a worker's whole tree (a frozen node) for `pauseMs`; `manager-stop` also
 *   pauses the manager meanwhile, while it recovers that worker, and resumes it first; the worker is resumed
 *   before its tasks (it must fence them before they run again);
 * - redis-stop: SIGSTOP of Redis (option `redis.pid`) past the job lock (`redisPauseMs`), then SIGCONT;
 * - redis-kill: SIGKILL of Redis, restarted on its AOF after `redisDownMs` (option `redis.restart()`).
 */
export const FAULTS = [
  'worker-kill',
  'worker-stop',
  'worker-freeze',
  'manager-stop',
  'redis-stop',
  'redis-kill',
];

const STATUS = { success: 4, failed: -2, terminated: -4, lostconnection: -7 };
const FINAL = code => code < 0 || code === 4;

/**
 * Options: redisUrl, prefix, tasks, workers, slots, workerKills (fault rounds), faults (see FAULTS; default
 * worker-kill), pauseMs, managerPauseMs, redisPauseMs, redisDownMs, redis ({pid, restart()} for the Redis
 * faults), taskKillRate, minSeconds, maxSeconds, seed, settleMs (how long to wait for the last tasks), env
 * (extra settings), log (progress lines), workDir (an existing directory for the run's files; by
 * default a new one in the system's temporary directory, left for inspection). Resolves with a report; the caller decides what a violation means
 * (the test fails, the script exits 1). `overlaps` (two live runs of a task) are also violations.
 */
export async function runChaos(o) {
  const opts = {
    tasks: 200,
    workers: 3,
    slots: 4,
    workerKills: 6,
    taskKillRate: 0.05,
    maxSeconds: 1.2,
    minSeconds: 0.05,
    faults: ['worker-kill'],
    pauseMs: 5000,
    managerPauseMs: 6000,
    redisPauseMs: 6500,
    redisDownMs: 6000,
    batch: 25,
    seed: Date.now() % 100000,
    settleMs: 180_000,
    log: () => {},
    ...o,
  };
  const random = rng(opts.seed);
  const work = opts.workDir ?? mkdtempSync(join(tmpdir(), 'jtm-chaos-'));
  const markerDir = join(work, 'markers');
  const logDir = join(work, 'log');
  mkdirSync(markerDir);
  mkdirSync(logDir);
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    REDIS_URL: opts.redisUrl,
    JTM_PREFIX: opts.prefix ?? `{chaos-${opts.seed}}`,
    JTM_LOG_DIR: logDir,
    JTM_LOG_LEVEL: 'info',
    JTM_HEARTBEAT_INTERVAL: '500ms',
    JTM_MISSED_BEATS: '3',
    JTM_KILL_GRACE: '1s',
    JTM_SAMPLE_INTERVAL: '2s',
    JTM_SWEEP_INTERVAL: '1s',
    JTM_CONNECT_TIMEOUT: '5s',
    // A killed worker's tasks are back in the queue within about lock + stalled interval.
    JTM_LOCK_DURATION: '5s',
    JTM_STALLED_INTERVAL: '2s',
    ...(opts.env ?? {}),
  };
  const { loadConfig } = await import('../../dist/src/config.js');
  const { openContext, closeContext } = await import('../../dist/src/context.js');
  const { silentLogger } = await import('../../dist/src/logger.js');
  const ctx = await openContext(loadConfig(env), silentLogger(), 'worker');

  const plan = new Map(); // id → {seconds, exitCode}
  const killedTasks = new Map(); // id → kill exit code
  const killedWorkers = new Set();
  let workerSeq = 0;
  const workers = [];
  const startWorker = () => {
    const id = `chaos-w${++workerSeq}`;
    const w = startDaemon(
      ['worker', '-p', 'chaos', '--slots', String(opts.slots), '--worker_id', id, '--shutdown-grace', '30s'],
      env,
      join(work, `${id}.log`),
    );
    workers.push({ id, logFile: join(work, `${id}.log`), ...w });
  };
  for (let i = 0; i < opts.workers; i++) startWorker();
  const withManager = hasCommand('manager');
  let manager = withManager ? startDaemon(['manager'], env, join(work, 'manager.log')) : undefined;
  let managerRestarts = 0;
  opts.log(
    `chaos: seed ${opts.seed}, ${opts.tasks} tasks, work dir ${work}, manager ${withManager ? 'yes' : 'no'}`,
  );
  // The faults start once every first worker serves the pool: on a loaded machine a worker takes seconds to
  // start, and the first faults (1.5 to 4 s in) then hit workers that had not taken a task yet, testing
  // nothing. Bounded: a worker that never starts is not this wait's to report (the verdicts are).
  const { countWorkers } = await import('../../dist/src/pools/count-workers.js');
  for (let waited = 0; waited < 60_000; waited += 100) {
    const { live_slots } = await countWorkers(ctx, 'chaos').catch(() => ({ live_slots: 0 }));
    if (live_slots >= opts.workers * opts.slots) break;
    await sleep(100);
  }

  // Held closed while Redis is down or paused: submits and kills then would only test the CLI's failure path.
  let gate = Promise.resolve();
  let submitFailures = 0;
  const submitAll = async () => {
    for (let first = 0; first < opts.tasks; first += opts.batch) {
      await gate;
      const n = Math.min(opts.batch, opts.tasks - first);
      const specs = Array.from({ length: n }, () => ({
        seconds: opts.minSeconds + random() * opts.maxSeconds,
        exitCode: random() < 0.7 ? 0 : 1 + Math.floor(random() * 5),
      }));
      const file = join(work, `batch-${first}.jsonl`);
      writeFileSync(
        file,
        specs
          .map(s => JSON.stringify({ command: markerCommand(markerDir, s.seconds, s.exitCode) }))
          .join('\n') + '\n',
      );
      const r = await jtm(['submit', '-f', file, '-p', 'chaos'], env);
      const ids = [...r.stdout.matchAll(/^JTM task ID (\d+)$/gm)].map(m => Number(m[1]));
      if (r.code !== 0 || ids.length !== n) {
        submitFailures++;
        opts.log(`submit failed (${r.code}): ${r.stderr.trim()}`);
        continue;
      }
      ids.forEach((id, i) => plan.set(id, specs[i]));
      await sleep(200 + random() * 400);
    }
  };

  const pick = list => list[Math.floor(random() * list.length)];
  const faultLog = [];
  const fault = async kind => {
    const live = workers.filter(w => w.alive());
    let victim = pick(live);
    let running = victim ? await ctx.redis.smembers(ctx.keys.workerTasks(victim.id)).catch(() => []) : [];
    // A fault only tests something when it hits running tasks: the busiest live worker, once there is one
    // (on a loaded machine the first tasks may not have started yet when the first fault comes).
    for (let i = 0; running.length === 0 && i < 40; i++) {
      for (const w of live) {
        const r = await ctx.redis.smembers(ctx.keys.workerTasks(w.id)).catch(() => []);
        if (r.length > running.length) [victim, running] = [w, r];
      }
      if (running.length === 0) await sleep(250);
    }
    faultLog.push(kind);
    switch (kind) {
      case 'worker-kill':
        if (!victim) break;
        victim.child.kill('SIGKILL');
        await victim.exited;
        killedWorkers.add(victim.id);
        opts.log(`SIGKILL worker ${victim.id} (running ${running.join(',') || 'nothing'})`);
        startWorker();
        break;
      case 'worker-stop':
        if (!victim) break;
        opts.log(
          `SIGSTOP worker ${victim.id} for ${opts.pauseMs} ms (running ${running.join(',') || 'nothing'})`,
        );
        victim.child.kill('SIGSTOP');
        await sleep(opts.pauseMs);
        victim.child.kill('SIGCONT');
        break;
      case 'worker-freeze':
      case 'manager-stop': {
        if (!victim) break;
        // The whole tree, as a frozen node: the worker first (it asks for no new run), then what it has
        // started, again until no new process shows up. One snapshot missed a task spawned between the
        // snapshot and the signals: it ran on beside its new owner's run, an overlap of the harness's making.
        signal([victim.child.pid], 'SIGSTOP');
        let tree = [victim.child.pid];
        for (let round = 0; round < 10; round++) {
          const now = processTree(victim.child.pid);
          const added = now.filter(p => !tree.includes(p));
          if (added.length === 0) break;
          signal(added, 'SIGSTOP');
          tree = [...tree, ...added];
        }
        opts.log(
          `SIGSTOP worker ${victim.id} and its processes ${tree.slice(1).join(' ')} (running ${running.join(',') || 'nothing'})`,
        );
        let resumeManager;
        if (kind === 'manager-stop' && manager?.alive()) {
          // Paused as it notices the frozen worker (liveness window of 1.5 s plus up to a sweep).
          await sleep(1200 + random() * 1500);
          const m = manager;
          m.child.kill('SIGSTOP');
          opts.log(`SIGSTOP manager for ${opts.managerPauseMs} ms`);
          resumeManager = sleep(opts.managerPauseMs).then(() => m.child.kill('SIGCONT'));
        }
        await sleep(opts.pauseMs);
        await resumeManager;
        // The worker first: it must find its lease lapsed and stop its runs before they go on. Its tasks are
        // resumed once it has logged the end of each fenced run (its tree killed), or after 1.5 s when it had
        // nothing running. A fixed head start was not enough on a machine so loaded that the worker got no CPU
        // for seconds after SIGCONT, nor was its "about to lapse" line plus 300 ms: at load 25 the kills came
        // 2.4 s after that line, and a resumed task wrote its start beside the new owner's run.
        // The worker's pty host (its direct child, which holds the tasks' ptys and kills their trees) resumes
        // with it: the worker fences its runs through it, and nothing else can stop them before they go on.
        const fencedBefore = fencedRuns(victim.logFile);
        signal([victim.child.pid, ...childrenOf(victim.child.pid)], 'SIGCONT');
        await sleep(1500);
        for (let waited = 0; running.length > 0 && waited < 20_000; waited += 100) {
          if (fencedRuns(victim.logFile) - fencedBefore >= running.length) break;
          await sleep(100);
        }
        signal(tree.slice(1), 'SIGCONT');
        break;
      }
      case 'redis-stop': {
        const pid = opts.redis?.pid();
        if (!pid) break;
        let open;
        gate = new Promise(r => (open = r));
        opts.log(`SIGSTOP Redis for ${opts.redisPauseMs} ms`);
        process.kill(pid, 'SIGSTOP');
        await sleep(opts.redisPauseMs);
        process.kill(pid, 'SIGCONT');
        await sleep(1000);
        open();
        break;
      }
      case 'redis-kill': {
        if (!opts.redis?.restart) break;
        let open;
        gate = new Promise(r => (open = r));
        opts.log(`SIGKILL Redis, restarted on its AOF after ${opts.redisDownMs} ms`);
        await opts.redis.restart(opts.redisDownMs);
        await sleep(1000);
        open();
        break;
      }
      default:
        throw new Error(`unknown fault ${kind}`);
    }
  };

  const chaos = async () => {
    for (let k = 0; k < opts.workerKills; k++) {
      await sleep(1500 + random() * 2500);
      // In turn, so that a short run meets every kind it was given.
      await fault(opts.faults[k % opts.faults.length]);
      if (manager && k % 2 === 1 && opts.faults.includes('worker-kill')) {
        await manager.stop('SIGKILL');
        manager = startDaemon(['manager'], env, join(work, 'manager.log'));
        managerRestarts++;
      }
    }
  };

  const killTasks = async () => {
    const target = Math.round(opts.tasks * opts.taskKillRate);
    for (let k = 0; k < target * 4 && killedTasks.size < target; k++) {
      await sleep(300 + random() * 700);
      await gate;
      const ids = [...plan.keys()];
      const id = ids[Math.floor(random() * ids.length)];
      if (id === undefined || killedTasks.has(id)) continue;
      // Kills of tasks that already ended test nothing: aim at waiting and running ones.
      if (FINAL(Number(await ctx.redis.hget(ctx.keys.task(id), 'status').catch(() => null)))) continue;
      const r = await jtm(['kill', '-tid', String(id), '--wait', '10s'], env);
      killedTasks.set(id, r.code);
    }
  };

  const t0 = Date.now();
  await Promise.all([submitAll(), chaos(), killTasks()]);
  opts.log(`chaos phase over after ${Math.round((Date.now() - t0) / 1000)} s; waiting for the last tasks`);

  // Every accepted task must end by itself now that the chaos has stopped.
  const ids = [...plan.keys()].sort((a, b) => a - b);
  const deadline = Date.now() + opts.settleMs;
  let open = ids;
  while (open.length > 0 && Date.now() < deadline) {
    const p = ctx.redis.pipeline();
    for (const id of open) p.hget(ctx.keys.task(id), 'status');
    const res = (await p.exec()) ?? [];
    open = open.filter((_, i) => !FINAL(Number(res[i]?.[1])));
    if (open.length > 0) await sleep(1000);
  }
  const elapsedS = Math.round((Date.now() - t0) / 1000);

  await Promise.all(workers.map(w => w.stop('SIGTERM')));
  if (manager) await manager.stop('SIGTERM');

  // Verdicts.
  const violations = [];
  const overlapsFound = [];
  const counts = {};
  let reruns = 0;
  let restartedEvents = 0;
  for (const id of ids) {
    const rec = await ctx.tasks.get(id);
    const events = await ctx.tasks.events(id);
    const { runs, overlaps } = readMarker(join(markerDir, String(id)));
    const spec = plan.get(id);
    const status = rec?.status;
    const name = Object.entries(STATUS).find(([, c]) => c === status)?.[0] ?? String(status);
    counts[name] = (counts[name] ?? 0) + 1;
    if (runs.length > 1) reruns++;
    restartedEvents += events.filter(e => /^restarted/.test(e.reason)).length;
    const bad = msg => violations.push(`task ${id}: ${msg}`);
    if (status === undefined || !FINAL(status)) {
      bad(`not final (status ${status})`);
      continue;
    }
    const finals = events.filter(e => FINAL(e.to) && !FINAL(e.from));
    if (finals.length !== 1 || !FINAL(events.at(-1)?.to ?? 0)) bad(`${finals.length} final transitions`);
    for (const x of overlaps) overlapsFound.push(`task ${id}: two live runs at once (${x})`);
    // Each run spans from its start to its last line (end, or last tick when it was killed).
    for (let i = 0; i < runs.length; i++)
      for (let j = i + 1; j < runs.length; j++)
        if (runs[i].last > runs[j].start)
          overlapsFound.push(`task ${id}: runs ${runs[i].pid} and ${runs[j].pid} overlap`);
    const natural = spec.exitCode === 0 ? STATUS.success : STATUS.failed;
    const allowed = new Set([natural]);
    if (killedTasks.has(id)) allowed.add(STATUS.terminated);
    // Lost: by the record's own rule (more losses than retries), after a fault that can lose a worker.
    if (
      (rec.losses ?? 0) > rec.max_retries &&
      faultLog.some(f => f.startsWith('worker') || f === 'manager-stop')
    )
      allowed.add(STATUS.lostconnection);
    if (!allowed.has(status)) bad(`ended ${name} (${rec.reason}); expected one of ${[...allowed].join(',')}`);
    if (status === natural) {
      // The recorded result is the one of the execution that owned the task: its run ended with that code.
      const owner = runs.find(r => r.token === rec.run_token);
      if (!owner) bad(`ended ${name} but no run carries its execution token ${rec.run_token}`);
      else if (owner.end === undefined)
        bad(`ended ${name} but its owning run ${owner.pid} never reached its end`);
      else if (owner.exit !== spec.exitCode) bad(`owning run exited ${owner.exit}, planned ${spec.exitCode}`);
      if (status === STATUS.failed && rec.exit_code !== spec.exitCode)
        bad(`exit code ${rec.exit_code}, planned ${spec.exitCode}`);
    }
  }
  violations.push(...overlapsFound);
  // No task of a failed submit ever runs: ids handed out but never printed have no marker file.
  const lastId = Number((await ctx.redis.get(ctx.keys.nextTaskId)) ?? 0);
  for (let id = ids[0] ?? 1; id <= lastId; id++) {
    if (!plan.has(id) && existsSync(join(markerDir, String(id))))
      violations.push(`task ${id} of a submit that did not exit 0 ran`);
  }
  // Nothing of any task outlives the run (killed workers' trees included).
  const leftovers = [];
  for (const pid of readdirSync('/proc').filter(p => /^\d+$/.test(p))) {
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
      if (environ.includes(`JTM_LOG_DIR=${logDir}\0`) && environ.includes('JTM_TASK_ID=')) {
        const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
        if (state !== 'Z') leftovers.push(Number(pid));
      }
    } catch {
      // gone, or not ours
    }
  }
  if (leftovers.length > 0) violations.push(`task processes left behind: ${leftovers.join(' ')}`);
  await closeContext(ctx);
  const report = {
    seed: opts.seed,
    submitted: ids.length,
    submitFailures,
    counts,
    workerKills: killedWorkers.size,
    taskKills: killedTasks.size,
    managerRestarts,
    withManager,
    faults: faultLog,
    overlaps: overlapsFound.length,
    tasksRunMoreThanOnce: reruns,
    takeovers: restartedEvents,
    elapsedS,
    workDir: work,
    violations,
  };
  opts.log(
    `chaos: ${ids.length} tasks in ${elapsedS} s: ${JSON.stringify(counts)}; ${killedWorkers.size} workers and ` +
      `${killedTasks.size} tasks killed, ${managerRestarts} manager restarts, faults ${faultLog.join(',')}; ` +
      `${reruns} tasks re-run ` +
      `(${restartedEvents} take-overs); ${overlapsFound.length} overlaps; ${violations.length} violations`,
  );
  return report;
}
