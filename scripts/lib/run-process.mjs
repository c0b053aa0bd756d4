// Runs one process to its end and collects its output: what the chaos harness (scripts/lib/chaos.mjs) and
// the test helpers (test/helpers/cli.ts runJtm, test/reliability/fail-fast.test.ts) each wrote for themselves.
import { spawn } from 'node:child_process';

/**
 * Spawns `command` with `args` (stdin closed, or a pipe carrying `input`), resolves with its exit code (null
 * when killed) and its stdout and stderr as text. Killed with SIGKILL after `timeoutMs`; rejects only if it
 * cannot start.
 */
export function runProcess(command, args, { env, cwd, timeoutMs = 60_000, input } = {}) {
  return new Promise((resolve, reject) => {
    const stdin = input === undefined ? 'ignore' : 'pipe';
    const child = spawn(command, args, { env, cwd, stdio: [stdin, 'pipe', 'pipe'] });
    if (input !== undefined) child.stdin.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', d => (stdout += d));
    child.stderr.on('data', d => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', err => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
