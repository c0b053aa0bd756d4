// Benchmark 7: a dynamic pool on the local Slurm, submit → task running, against `sbatch --wrap` of the
// same command → running. Slurm pools are on another branch, and this benchmark never starts Slurm
// itself (slurmctld is shared by everyone on the machine): it measures what a running Slurm allows.
import { execFileSync } from 'node:child_process';

import { sleep } from './lib/stats.mjs';
import { median } from './lib/stats.mjs';

function slurmUp() {
  try {
    execFileSync('sinfo', ['-h'], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

async function sbatchToRunning() {
  const t0 = Date.now();
  const out = execFileSync('sbatch', ['--parsable', '--wrap', 'sleep 5', '-o', '/dev/null'], {
    encoding: 'utf8',
  });
  const jobId = out.trim().split(';')[0];
  try {
    for (;;) {
      const state = execFileSync('squeue', ['-h', '-j', jobId, '-o', '%T'], { encoding: 'utf8' }).trim();
      if (state === 'RUNNING' || state === 'COMPLETED' || state === '') return Date.now() - t0;
      if (Date.now() - t0 > 60_000) throw new Error(`job ${jobId} not running after 60 s`);
      await sleep(50);
    }
  } finally {
    execFileSync('scancel', [jobId]);
  }
}

export async function run({ quick, log }) {
  if (!slurmUp()) {
    return [
      {
        id: '7',
        figure: '7. dynamic pool on local Slurm: submit → running',
        notMeasured: 'no Slurm controller answers sinfo here (not started by the benchmark: it is shared)',
        target: '≤ 1.5 × sbatch --wrap',
      },
    ];
  }
  const times = [];
  for (let i = 0; i < (quick ? 3 : 7); i++) times.push(await sbatchToRunning());
  log(`  sbatch --wrap → running: ${times.join(', ')} ms`);
  return [
    {
      id: '7',
      figure: '7. `sbatch --wrap` → running (baseline alone)',
      value: median(times),
      unit: ' ms',
      target: '—',
    },
    {
      id: '7',
      figure: '7. dynamic pool on local Slurm: submit → running',
      notMeasured: 'Slurm pools are on another branch; compare with the row above once merged',
      target: '≤ 1.5 × sbatch --wrap',
    },
  ];
}
