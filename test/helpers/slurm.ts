import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { ROOT } from './cli.js';

export const SLURM_BASE = '/tmp/jtm-slurm';

export interface SlurmAvailability {
  available: boolean;
  /** Why Slurm cannot be had here (not root, packages not installable, daemons not starting). */
  reason?: string;
}

let cached: SlurmAvailability | undefined;

/**
 * Starts the single-node Slurm of scripts/slurm-up.sh once (the script is idempotent) and exports
 * SLURM_CONF to this process, whose children (sbatch, squeue, scancel) inherit it.
 */
export function ensureSlurm(): SlurmAvailability {
  if (cached) return cached;
  const conf = join(SLURM_BASE, 'slurm.conf');
  const env = { ...process.env, SLURM_CONF: conf };
  const answering = spawnSync('sinfo', ['-h'], { env, timeout: 20_000 }).status === 0;
  if (!answering) {
    if (process.getuid?.() !== 0) {
      cached = {
        available: false,
        reason: 'not root: scripts/slurm-up.sh needs root to start slurmctld/slurmd',
      };
      return cached;
    }
    const up = spawnSync('bash', [join(ROOT, 'scripts', 'slurm-up.sh'), SLURM_BASE], {
      env,
      encoding: 'utf8',
      timeout: 600_000,
    });
    if (up.status !== 0) {
      const tail = `${up.stderr ?? ''}${up.stdout ?? ''}`.trim().split('\n').slice(-3).join(' | ');
      cached = {
        available: false,
        reason: `scripts/slurm-up.sh failed (${up.status ?? up.signal}): ${tail}`,
      };
      return cached;
    }
  }
  process.env['SLURM_CONF'] = conf;
  cached = { available: true };
  return cached;
}

/** What a test file says when it cannot run its Slurm tests; in CI (root, packages) that is a failure. */
export function reportSlurmUnavailable(file: string, what: readonly string[], reason: string): void {
  const text = `${file}: Slurm unavailable (${reason}); NOT RUN: ${what.join('; ')}`;
  process.stderr.write(`\n*** ${text}\n`);
  if (process.env['CI'] === 'true') throw new Error(`${text} — CI must run them`);
}
