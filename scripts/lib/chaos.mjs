// The chaos harness of the reliability suite (test/reliability/chaos.test.ts runs a bounded version,
// scripts/chaos.mjs the full one). It submits tasks of random short durations and exit codes to a pool
// served by several workers, SIGKILLs random workers (starting replacements), kills random tasks and,
// when this build has `jtm manager`, restarts the manager; then it checks that every task reached
// exactly one final status that matches what happened to it and that no task ever ran twice at once.
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
  return new Promise(resolve => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env,
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', d => (stdout += d));
    child.stderr.on('data', d => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
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

/**
 * The command of one chaos task. Before it starts it looks for a live earlier run of the same task (a pid
 * from its marker file without an end line, still running with this task's id in its environment) and
 * writes an `X` line if it finds one: two live executions at once. Then `S pid ns`, sleep, `E pid ns`.
 */
export function markerCommand(markerDir, seconds, exitCode) {
  const m = `'${markerDir}'/"$JTM_TASK_ID"`;
  return [
    `m=${m}`,
    'if [ -f "$m" ]; then while read -r k p _; do',
    '  if [ "$k" = S ] && ! grep -q "^E $p " "$m"; then',
    '    st=$(cut -d" " -f3 /proc/$p/stat 2>/dev/null)',
    '    if [ -n "$st" ] && [ "$st" != Z ] && tr "\\0" "\\n" < /proc/$p/environ 2>/dev/null | grep -qx "JTM_TASK_ID=$JTM_TASK_ID"; then echo "X $p $$" >> "$m"; fi',
    '  fi',
    'done < "$m"; fi',
    'echo "S $$ $(date +%s%N)" >> "$m"',
    `sleep ${seconds.toFixed(2)}`,
    'echo "E $$ $(date +%s%N)" >> "$m"',
    `exit ${exitCode}`,
  ].join('\n');
}

/** Runs of one task from its marker file: [{pid, start, end?}] plus overlap detections. */
export function readMarker(path) {
  const runs = new Map();
  const overlaps = [];
  if (!existsSync(path)) return { runs: [], overlaps };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [k, pid, t] = line.split(' ');
    if (k === 'S') runs.set(pid, { pid: Number(pid), start: BigInt(t), end: undefined });
    else if (k === 'E' && runs.has(pid)) runs.get(pid).end = BigInt(t);
    else if (k === 'X') overlaps.push(line);
  }
  return { runs: [...runs.values()].sort((a, b) => (a.start < b.start ? -1 : 1)), overlaps };
}

const STATUS = { success: 4, failed: -2, terminated: -4, lostconnection: -7 };
const FINAL = code => code < 0 || code === 4;

/**
 * Options: redisUrl, prefix, tasks, workers, slots, workerKills, taskKillRate, maxSeconds, seed,
 * settleMs (how long to wait for the last tasks), log (progress lines). Resolves with a report; the
 * caller decides what a violation means (the test fails, the script exits 1).
 */
export async function runChaos(o) {
  const opts = {
    tasks: 200,
    workers: 3,
    slots: 4,
    workerKills: 6,
    taskKillRate: 0.05,
    maxSeconds: 1.2,
    batch: 25,
    seed: Date.now() % 100000,
    settleMs: 180_000,
    log: () => {},
    ...o,
  };
  const random = rng(opts.seed);
  const work = mkdtempSync(join(tmpdir(), 'jtm-chaos-'));
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
    workers.push({ id, ...w });
  };
  for (let i = 0; i < opts.workers; i++) startWorker();
  const withManager = hasCommand('manager');
  let manager = withManager ? startDaemon(['manager'], env, join(work, 'manager.log')) : undefined;
  let managerRestarts = 0;
  opts.log(
    `chaos: seed ${opts.seed}, ${opts.tasks} tasks, work dir ${work}, manager ${withManager ? 'yes' : 'no'}`,
  );

  let submitFailures = 0;
  const submitAll = async () => {
    for (let first = 0; first < opts.tasks; first += opts.batch) {
      const n = Math.min(opts.batch, opts.tasks - first);
      const specs = Array.from({ length: n }, () => ({
        seconds: 0.05 + random() * opts.maxSeconds,
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

  const chaos = async () => {
    for (let k = 0; k < opts.workerKills; k++) {
      await sleep(1500 + random() * 2500);
      const live = workers.filter(w => w.alive());
      const victim = live[Math.floor(random() * live.length)];
      if (victim) {
        const running = await ctx.redis.smembers(ctx.keys.workerTasks(victim.id)).catch(() => []);
        victim.child.kill('SIGKILL');
        await victim.exited;
        killedWorkers.add(victim.id);
        opts.log(`SIGKILL worker ${victim.id} (running ${running.join(',') || 'nothing'})`);
      }
      startWorker();
      if (manager && k % 2 === 1) {
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
      const ids = [...plan.keys()];
      const id = ids[Math.floor(random() * ids.length)];
      if (id === undefined || killedTasks.has(id)) continue;
      // Kills of tasks that already ended test nothing: aim at waiting and running ones.
      if (FINAL(Number(await ctx.redis.hget(ctx.keys.task(id), 'status')))) continue;
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
    for (const x of overlaps) bad(`two live runs at once (${x})`);
    for (let i = 1; i < runs.length; i++) {
      const prev = runs[i - 1];
      if (prev.end !== undefined && prev.end > runs[i].start)
        bad(`runs ${prev.pid} and ${runs[i].pid} overlap`);
    }
    const natural = spec.exitCode === 0 ? STATUS.success : STATUS.failed;
    const allowed = new Set([natural]);
    if (killedTasks.has(id)) allowed.add(STATUS.terminated);
    if (rec.worker_id && killedWorkers.has(rec.worker_id)) allowed.add(STATUS.lostconnection);
    if (!allowed.has(status)) bad(`ended ${name} (${rec.reason}); expected one of ${[...allowed].join(',')}`);
    if (status === natural) {
      if (!runs.some(r => r.end !== undefined)) bad(`ended ${name} but its command never ran to the end`);
      if (status === STATUS.failed && rec.exit_code !== spec.exitCode)
        bad(`exit code ${rec.exit_code}, planned ${spec.exitCode}`);
    }
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
    tasksRunMoreThanOnce: reruns,
    takeovers: restartedEvents,
    elapsedS,
    workDir: work,
    violations,
  };
  opts.log(
    `chaos: ${ids.length} tasks in ${elapsedS} s: ${JSON.stringify(counts)}; ${killedWorkers.size} workers and ` +
      `${killedTasks.size} tasks killed, ${managerRestarts} manager restarts; ${reruns} tasks re-run ` +
      `(${restartedEvents} take-overs); ${violations.length} violations`,
  );
  return report;
}
