import { spawn, spawnSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { BIN, ROOT, runJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { SKIP_MARK, type Requirement } from '../helpers/requirements.js';

/**
 * A node out of ptys (kernel.pty.max, shared by every user; a task that leaks them): every task the worker took
 * ended `failed` "cannot start: forkpty(3) failed.", rc 126, no retry, the whole queue in seconds (adversary 10
 * K7). Made here with a devpts instance of its own, limited to 6 ptys, in a mount namespace the worker runs in:
 * the machine's ptys are untouched.
 */
const MOUNT =
  'mount -t devpts -o newinstance,ptmxmode=0666,max=6 devpts /dev/pts && mount --bind /dev/pts/ptmx /dev/ptmx';

const namespace: Requirement = (() => {
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', MOUNT], {
    encoding: 'utf8',
  });
  if (r.error) return { available: false, reason: 'needs unshare (util-linux)' };
  if (r.status !== 0)
    return {
      available: false,
      reason: `needs a mount namespace with its own devpts (root): ${r.stderr.trim()}`,
    };
  return { available: true };
})();

// Not describeIf: a container without CAP_SYS_ADMIN cannot mount, and the run says why it skipped this.
(namespace.available ? describe : describe.skip)(
  `a node out of ptys${namespace.available ? '' : `${SKIP_MARK}${namespace.reason}]`}`,
  () => {
    it('gives the task it cannot start back, takes no task for a while, and runs it once ptys are free', async () => {
      const env = testEnv();
      const ctx = await openTestContext(env);
      const worker = spawn(
        'unshare',
        [
          '-m',
          '--propagation',
          'private',
          'bash',
          '-c',
          `${MOUNT} && exec "$0" "$@"`,
          process.execPath,
          BIN,
          'worker',
          '-p',
          'ptyshort',
          '--slots',
          '2',
        ],
        { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      worker.stdout.on('data', d => (out += d));
      worker.stderr.on('data', d => (out += d));
      try {
        await waitWorkers(env, 'ptyshort');
        // Holds every pty left for 4 s: its own is one of the 6.
        const hog =
          'n=0; for i in $(seq 30); do exec {f}<>/dev/ptmx 2>/dev/null || break; n=$((n+1)); done; echo held $n; sleep 4';
        const [hogId] = taskIds((await runJtm(['submit', '-p', 'ptyshort', '-cmd', hog], env)).stdout);
        await waitFor(
          async () => (await ctx.tasks.get(hogId!))?.status_name === 'running' || undefined,
          'the hog',
        );
        await new Promise(r => setTimeout(r, 500));
        const [id] = taskIds(
          (await runJtm(['submit', '-p', 'ptyshort', '-cmd', 'echo innocent'], env)).stdout,
        );
        const rec = await waitFor(
          async () => {
            const r = await ctx.tasks.get(id!);
            return r?.status_name === 'success' ? r : undefined;
          },
          'the innocent task to run',
          30_000,
        );
        // Given back (no loss, no retry spent), then run.
        expect(rec.attempts).toBeGreaterThanOrEqual(2);
        expect(rec.losses ?? 0).toBe(0);
        expect(out).toMatch(/the node is out of ptys, processes or descriptors/);
      } finally {
        worker.kill('SIGTERM');
        await new Promise(r => worker.once('exit', r));
        await closeContext(ctx);
      }
    });
  },
);
