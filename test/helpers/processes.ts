import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/** Live processes whose command line matches `pattern` (`pgrep -f`: an extended regular expression). */
export function processesMatching(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * What `ps` says of `pids` (pid, parent, state, age, command) and their cgroups: the message of an assertion that
 * a tree is gone, so that a rare failure says which process was left and in what state.
 */
export function describeProcesses(pids: readonly number[]): string {
  if (pids.length === 0) return 'none';
  let ps = '';
  try {
    ps = execFileSync('ps', ['-o', 'pid,ppid,stat,etimes,args', '-p', pids.join(',')], { encoding: 'utf8' });
  } catch {
    ps = '(ps found none of them: they ended meanwhile)';
  }
  const cgroups = pids.map(pid => {
    try {
      return `${pid}: ${readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n').slice(0, 3).join(' ')}`;
    } catch {
      return `${pid}: gone`;
    }
  });
  return `${ps}\n${cgroups.join('\n')}`;
}

const NS_LAST_PID = '/proc/sys/kernel/ns_last_pid';

/**
 * Whether this test may choose the pid of the next process (root, with ns_last_pid writable: how CRIU restores
 * pids), and if not why: what makes a pid handed out again reproducible.
 */
export function pidPlacement(): { available: boolean; reason?: string } {
  try {
    writeFileSync(NS_LAST_PID, readFileSync(NS_LAST_PID, 'latin1').trim());
    return { available: true };
  } catch (err) {
    return {
      available: false,
      reason: `cannot choose pids (${(err as NodeJS.ErrnoException).code ?? 'error'} writing ${NS_LAST_PID}: needs root)`,
    };
  }
}

/**
 * Starts `command` (argv) so that it gets `pid`, a pid handed out before and free again: a reused pid on demand.
 * Other processes forking at the same moment may take it first: tried a few times. Undefined if it never got it.
 */
export async function spawnAtPid(
  pid: number,
  command: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChildProcess | undefined> {
  for (let attempt = 0; attempt < 100; attempt++) {
    writeFileSync(NS_LAST_PID, String(pid - 1));
    const child = spawn(command[0] as string, command.slice(1), { stdio: 'ignore', env });
    if (child.pid === pid) return child;
    child.kill('SIGKILL');
    await new Promise(r => setTimeout(r, 5 + Math.random() * 20));
  }
  return undefined;
}
