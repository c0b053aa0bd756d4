import { execFile } from 'node:child_process';
import { userInfo } from 'node:os';

import { SlurmError } from '../errors.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a Slurm client command without a shell; a missing binary or a hang is a result, not a crash. */
export function runSlurmCommand(
  command: string,
  args: readonly string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise(resolve => {
    execFile(
      command,
      [...args],
      { cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean };
        const code = typeof e.code === 'number' ? e.code : 1;
        const why =
          e.code === 'ENOENT' ? `${command}: command not found` : e.killed ? `${command}: timed out` : '';
        resolve({ code, stdout, stderr: why ? `${why}\n${stderr}` : stderr });
      },
    );
  });
}

/** The line of Slurm's stderr that says what went wrong (its last `error:` line), for task reasons. */
export function slurmMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map(l => l.trim())
    .filter(l => l !== '');
  const errors = lines.filter(l => /error/i.test(l));
  return (errors[errors.length - 1] ?? lines[lines.length - 1] ?? 'no message').slice(0, 500);
}

export type SlurmJobState = 'pending' | 'running';

/**
 * The user's jobs that Slurm still knows as alive (pending, configuring, running, completing, suspended).
 * Throws SlurmError when squeue fails: the caller must then keep what it knew, never conclude "dead".
 */
export async function listActiveJobs(): Promise<Map<string, SlurmJobState>> {
  const r = await runSlurmCommand('squeue', ['-h', '-u', userInfo().username, '-o', '%i|%T'], {
    timeoutMs: 30_000,
  });
  if (r.code !== 0) throw new SlurmError(`squeue failed: ${slurmMessage(r.stderr)}`);
  const jobs = new Map<string, SlurmJobState>();
  for (const line of r.stdout.split('\n')) {
    const [id, state] = line.trim().split('|');
    if (!id || !state) continue;
    jobs.set(id, state === 'PENDING' || state === 'CONFIGURING' ? 'pending' : 'running');
  }
  return jobs;
}

/** `sbatch --parsable`: the job id (the part before `;cluster`). */
export async function sbatch(scriptFile: string, flags: readonly string[], cwd: string): Promise<string> {
  const r = await runSlurmCommand('sbatch', ['--parsable', ...flags, scriptFile], { cwd });
  const id = /^(\d+)/.exec(r.stdout.trim())?.[1];
  if (r.code !== 0 || !id) throw new SlurmError(`sbatch failed: ${slurmMessage(r.stderr || r.stdout)}`);
  return id;
}

export async function scancel(ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const r = await runSlurmCommand('scancel', [...ids], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new SlurmError(`scancel failed: ${slurmMessage(r.stderr)}`);
}
