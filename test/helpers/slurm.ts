import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { ROOT } from './cli.js';

/** Where scripts/slurm-up.sh keeps its Slurm; JTM_TEST_SLURM_BASE moves it (e.g. to check the skip logic). */
export const SLURM_BASE = process.env['JTM_TEST_SLURM_BASE'] ?? '/tmp/jtm-slurm';

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
  // Without its configuration file sinfo would retry for a minute before saying no.
  const answering = existsSync(conf) && spawnSync('sinfo', ['-h'], { env, timeout: 20_000 }).status === 0;
  if (!answering) {
    if (process.getuid?.() !== 0) {
      cached = {
        available: false,
        reason: 'no Slurm answering and not root (scripts/slurm-up.sh starts slurmctld/slurmd as root)',
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
        reason: `scripts/slurm-up.sh failed (${up.status ?? up.signal}; apt-get install slurmctld slurmd slurm-client munge): ${tail}`,
      };
      return cached;
    }
  }
  process.env['SLURM_CONF'] = conf;
  cached = { available: true };
  return cached;
}
