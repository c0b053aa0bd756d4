// Benchmark 7: a dynamic pool on the local Slurm — `jtm submit` of a task with a wall time → the manager's
// provisioning (sbatch of the worker script) → the worker in the allocation starts the task — against
// `sbatch --wrap` of the same command → that command starting, in the same run. Starts the project's single-node Slurm
// (scripts/slurm-up.sh) when it is not running and this is root.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { BIN, jtmEnv, jtmModule, openJtm, ROOT, tempDir } from './lib/jtm.mjs';
import { median, sleep } from './lib/stats.mjs';

const SLURM_BASE = '/tmp/jtm-slurm';
const SLURM_CONF = join(SLURM_BASE, 'slurm.conf');

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

/** `sbatch --wrap` of a command that notes when it starts: sbatch → the command running (what a task waits for). */
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
      if (existsSync(marker)) return Number(readFileSync(marker, 'utf8').trim()) - t0;
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

/** One task on a fresh dynamic pool: `jtm submit` → the running manager provisions → the task starts. */
async function jtmToRunning(ctx, i, env) {
  const { cancelPoolAllocations } = await jtmModule('slurm/slurm-jobs.js');
  const pool = `bench7-${i}`;
  const t0 = Date.now();
  try {
    const r = spawnSync(
      process.execPath,
      [BIN, 'submit', '-cmd', 'sleep 5', '-p', pool, '-cl', 'bench', '-t', '00:05:00'],
      { env, encoding: 'utf8' },
    );
    const id = Number(/JTM task ID (\d+)/.exec(r.stdout)?.[1]);
    if (!id) throw new Error(`submit failed: ${r.stderr}`);
    for (;;) {
      const rec = await ctx.tasks.get(id);
      if (rec?.started_at) return rec.started_at - t0;
      if (Date.now() - t0 > 60_000) throw new Error(`task ${id} not running after 60 s`);
      await sleep(20);
    }
  } finally {
    await cancelPoolAllocations(ctx, pool);
  }
}

export async function run({ quick, redisUrl, log }) {
  const why = ensureSlurm();
  const figure = '7. dynamic pool on local Slurm: `jtm submit` → task started';
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
  const vars = {
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
    for (let i = 0; i < (quick ? 3 : 7); i++) {
      // Both start from an idle node: a cancelled job holds its CPUs while it completes.
      await waitIdle(slurmEnv);
      base.push(await sbatchToRunning(slurmEnv, work, i));
      await waitIdle(slurmEnv);
      jtm.push(await jtmToRunning(ctx, i, env));
    }
  } finally {
    manager.kill('SIGTERM');
    await close();
  }
  log(`  sbatch --wrap → running: ${base.join(', ')} ms; jtm submit → task running: ${jtm.join(', ')} ms`);
  const ratio = median(jtm) / median(base);
  return [
    {
      id: '7',
      figure,
      value: median(jtm),
      unit: ' ms',
      baseline: median(base),
      baselineName: '`sbatch --wrap` → its command started',
      ratio,
      target: '≤ 1.5 × sbatch --wrap',
      pass: ratio <= 1.5,
    },
  ];
}
