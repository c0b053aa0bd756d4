// Benchmark 7: a dynamic pool on the local Slurm — `jtm submit` of a task with a wall time → the manager's
// provisioning (sbatch of the worker script) → the worker in the allocation starts the task — against
// `sbatch --wrap` of the same command → that command starting, in the same run. Starts the project's single-node Slurm
// (scripts/slurm-up.sh) when it is not running and this is root.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { BIN, jtmEnv, jtmModule, openJtm, ROOT, tempDir } from './lib/jtm.mjs';
import { median, sleep } from './lib/stats.mjs';

const SLURM_BASE = '/tmp/jtm-slurm';
const SLURM_CONF = join(SLURM_BASE, 'slurm.conf');
const SLURM_LOGS = [join(SLURM_BASE, 'log', 'slurmctld.log'), join(SLURM_BASE, 'log', 'slurmd.log')];

/**
 * When Slurm saw each step of job `jobId`, from its daemons' logs (millisecond timestamps, local time):
 * sbatch received, resources allocated, batch script launched on the node, first srun step launched.
 */
function slurmSteps(jobId) {
  const text = SLURM_LOGS.map(f => (existsSync(f) ? readFileSync(f, 'utf8') : '')).join('\n');
  // The last matches: job ids start again at 1 when scripts/slurm-up.sh starts a fresh Slurm (logs are kept).
  const lines = re => [...text.matchAll(new RegExp(`^\\[([0-9T:.-]+)\\] ${re}`, 'gm'))];
  const received = lines(`_slurm_rpc_submit_batch_job: JobId=${jobId} `).pop();
  if (!received) return {};
  const after = re => {
    const m = lines(re).find(l => new Date(l[1]) >= new Date(received[1]));
    return m ? new Date(m[1]).getTime() : undefined;
  };
  return {
    received: new Date(received[1]).getTime(),
    allocated: after(`sched: Allocate JobId=${jobId} `),
    launched: after(`Launching batch job ${jobId} `),
    step: after(`launch task StepId=${jobId}\\.0 `),
  };
}

function slurmAnswers() {
  return spawnSync('sinfo', ['-h'], { env: { ...process.env, SLURM_CONF }, timeout: 10_000 }).status === 0;
}

/** Slurm up, or the reason it cannot be. */
function ensureSlurm() {
  if (slurmAnswers()) return undefined;
  if (process.getuid?.() !== 0) return 'not root: scripts/slurm-up.sh needs root';
  const up = spawnSync('bash', [join(ROOT, 'scripts', 'slurm-up.sh'), SLURM_BASE], { encoding: 'utf8' });
  return up.status === 0 && slurmAnswers()
    ? undefined
    : `scripts/slurm-up.sh failed: ${up.stderr.slice(-200)}`;
}

/**
 * `sbatch --wrap` of a command that notes when it starts: sbatch → the command running (what a task waits for).
 * Resolves with that time and the steps in between (ms from the sbatch call).
 */
async function sbatchToRunning(env, dir, i) {
  const marker = join(dir, `wrap-${i}`);
  const t0 = Date.now();
  const out = execFileSync(
    'sbatch',
    [
      '--parsable',
      '-o',
      '/dev/null',
      '--wrap',
      `date +%s%3N > ${marker}.tmp && mv ${marker}.tmp ${marker}; sleep 5`,
    ],
    { encoding: 'utf8', env },
  );
  const jobId = out.trim().split(';')[0];
  try {
    for (;;) {
      if (existsSync(marker)) {
        const total = Number(readFileSync(marker, 'utf8').trim()) - t0;
        return { total, steps: { ...since(t0, slurmSteps(jobId)), command: total } };
      }
      if (Date.now() - t0 > 60_000) throw new Error(`job ${jobId} not running after 60 s`);
      await sleep(20);
    }
  } finally {
    execFileSync('scancel', [jobId], { env });
  }
}

async function waitIdle(env) {
  for (let t0 = Date.now(); Date.now() - t0 < 60_000; await sleep(100)) {
    if (execFileSync('squeue', ['-h', '-o', '%i'], { encoding: 'utf8', env }).trim() === '') return;
  }
  throw new Error('Slurm jobs still present after 60 s');
}

/** One task on a fresh dynamic pool: `jtm submit` → the running manager provisions → the task's command runs. */
async function jtmToRunning(ctx, i, env, stamps) {
  const { cancelPoolAllocations, readPoolJobs } = await jtmModule('slurm/slurm-jobs.js');
  const { listLiveWorkers } = await jtmModule('pools/live-workers.js');
  const pool = `bench7-${i}`;
  // The same command as the baseline's: the figure is when it runs, not when JTM marks the task started.
  const marker = join(stamps, `task-${i}`);
  const command = `date +%s%3N > ${marker}.tmp && mv ${marker}.tmp ${marker}; sleep 5`;
  const t0 = Date.now();
  try {
    const r = spawnSync(
      process.execPath,
      [BIN, 'submit', '-cmd', command, '-p', pool, '-cl', 'bench', '-t', '00:05:00'],
      { env, encoding: 'utf8' },
    );
    const submitted = Date.now() - t0;
    const id = Number(/JTM task ID (\d+)/.exec(r.stdout)?.[1]);
    if (!id) throw new Error(`submit failed: ${r.stderr}`);
    for (;;) {
      const rec = existsSync(marker) ? await ctx.tasks.get(id) : undefined;
      if (rec?.started_at) {
        const running = Number(readFileSync(marker, 'utf8').trim());
        const [jobId, job] = [...(await readPoolJobs(ctx, pool))][0] ?? [];
        const [worker] = await listLiveWorkers(ctx, pool);
        const stamp = join(stamps, `script-${jobId}`);
        const steps = {
          submitted,
          ...since(t0, {
            sbatched: job?.submitted_at,
            ...slurmSteps(jobId),
            // bash's $EPOCHREALTIME, in µs without the dot
            worker: existsSync(stamp) ? Number(readFileSync(stamp, 'utf8').trim()) / 1000 : undefined,
            registered: worker?.started_at,
            claimed: rec.started_at,
            command: running,
          }),
        };
        return { total: running - t0, steps };
      }
      if (Date.now() - t0 > 60_000) throw new Error(`task ${id} not running after 60 s`);
      await sleep(20);
    }
  } finally {
    await cancelPoolAllocations(ctx, pool);
  }
}

/**
 * The hot commands' V8 code cache (bin/run.js) is written by their first successful run after a build: one
 * submit and one short worker first (on a manual pool: no allocation), so that every measured run starts as
 * it would at a site, with the cache there. Without it the first run after `npm run build` is the slower one.
 */
function primeCodeCache(env) {
  for (const args of [
    ['submit', '-cmd', 'true', '-p', 'bench7-prime'],
    ['worker', '-p', 'bench7-prime', '--lifetime', '3s'],
  ]) {
    const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0)
      throw new Error(`jtm ${args[0]} (code cache priming) failed: ${r.stderr.slice(-300)}`);
  }
}

/** Each defined time as ms since t0. */
function since(t0, times) {
  return Object.fromEntries(
    Object.entries(times).map(([k, v]) => [k, v === undefined ? undefined : Math.round(v - t0)]),
  );
}

/** Median of each step over the runs, as `name +Δ ms` from the previous step: where the time goes. */
function breakdown(runs) {
  const names = Object.keys(runs[0]?.steps ?? {});
  let prev = 0;
  const parts = [];
  for (const n of names) {
    const values = runs.map(r => r.steps[n]).filter(v => v !== undefined);
    if (values.length === 0) continue;
    const m = median(values);
    parts.push(`${n} ${m} (+${m - prev})`);
    prev = m;
  }
  return parts.join(', ');
}

export async function run({ quick, redisUrl, log }) {
  const why = ensureSlurm();
  const figure = '7. dynamic pool on local Slurm: `jtm submit` → task command running';
  if (why)
    return [{ id: '7', figure, notMeasured: `no Slurm here (${why})`, target: '≤ 1.5 × sbatch --wrap' }];
  // Provisioning runs sbatch/squeue from this process, as the manager would from its own.
  process.env.SLURM_CONF = SLURM_CONF;
  const work = tempDir('slurm');
  const sites = join(work, 'sites.json');
  writeFileSync(
    sites,
    JSON.stringify({ clusters: { bench: { defaults: { partition: 'debug', cpu: 1, mem: '200M' } } } }),
  );
  // The batch script starts the worker through this wrapper, which notes when it got there (one bash start,
  // a few ms, added to JTM's figure: the breakdown is worth it).
  const wrapper = join(work, 'stamp-worker.sh');
  writeFileSync(
    wrapper,
    `#!/bin/bash\necho "\${EPOCHREALTIME/./}" > ${work}/script-$SLURM_JOB_ID\nexec "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
  const vars = {
    JTM_COMMAND: `${wrapper} ${process.execPath} ${BIN}`,
    JTM_SITE_CONFIG: sites,
    JTM_SBATCH_INTERVAL: '0ms',
    JTM_SLURM_IDLE_TIMEOUT: '2s',
    JTM_LOG_DIR: work,
  };
  const env = jtmEnv(redisUrl, { ...vars, SLURM_CONF });
  const slurmEnv = { ...process.env, SLURM_CONF };
  const base = [];
  const jtm = [];
  // A real manager with the default sweep interval: a submit to a dynamic pool wakes it at once.
  const manager = spawn(process.execPath, [BIN, 'manager'], { env, stdio: 'ignore' });
  const { ctx, close } = await openJtm(redisUrl, { vars });
  try {
    while (!(await ctx.redis.exists(ctx.keys.managerAlive))) await sleep(50);
    primeCodeCache(env);
    for (let i = 0; i < (quick ? 3 : 7); i++) {
      // Both start from an idle node: a cancelled job holds its CPUs while it completes.
      await waitIdle(slurmEnv);
      base.push(await sbatchToRunning(slurmEnv, work, i));
      await waitIdle(slurmEnv);
      jtm.push(await jtmToRunning(ctx, i, env, work));
    }
  } finally {
    manager.kill('SIGTERM');
    await close();
  }
  const totals = runs => runs.map(r => r.total).join(', ');
  log(`  sbatch --wrap → running: ${totals(base)} ms; jtm submit → task running: ${totals(jtm)} ms`);
  log(`  sbatch --wrap, median ms from the sbatch call: ${breakdown(base)}`);
  log(`  jtm, median ms from the submit call: ${breakdown(jtm)}`);
  const ratio = median(jtm.map(r => r.total)) / median(base.map(r => r.total));
  return [
    {
      id: '7',
      figure,
      value: median(jtm.map(r => r.total)),
      unit: ' ms',
      baseline: median(base.map(r => r.total)),
      baselineName: '`sbatch --wrap` → its command started',
      ratio,
      target: '≤ 1.5 × sbatch --wrap',
      pass: ratio <= 1.5,
    },
  ];
}
