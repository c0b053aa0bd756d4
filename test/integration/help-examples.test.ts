import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

// @ts-expect-error plain JavaScript helper shared with the demo
import { freePort } from '../../scripts/lib/local-redis.mjs';
import { BIN, ROOT, runJtm, waitStatus } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';

/*
 * Every example of every command's --help runs as written (issue 12 item 16: the worker's dynamic example
 * failed). The examples are read from the built manifest (what --help prints), run by bash with `jtm` on the
 * PATH against the test Redis, in an order that gives them something to work on: the submit examples queue
 * task 42, the queries find it, a worker runs it, logs --follow then ends, kill and remove-pool come last.
 * Daemons (worker, manager, dashboard) run until they are up, then get SIGTERM and must exit 0.
 */
const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {
  commands: Record<string, { examples?: string[] }>;
};
const ORDER = [
  'submit',
  'status',
  'isalive',
  'resource-log',
  'pools',
  'check-worker',
  'check-manager',
  'worker',
  'logs',
  'report',
  'manager',
  'dashboard',
  'kill',
  'remove-pool',
];
const examples = Object.entries(manifest.commands)
  .flatMap(([id, c]) =>
    (c.examples ?? []).map(e => ({
      id,
      line: e.replaceAll('<%= config.bin %>', 'jtm').replaceAll('<%= command.id %>', id),
    })),
  )
  .sort((a, b) => ORDER.indexOf(a.id) - ORDER.indexOf(b.id));

/** When a daemon example is up: what it prints once it serves. */
const UP: Record<string, RegExp> = {
  worker: /"msg":"worker started"|worker started/,
  manager: /manager started/,
  dashboard: /dashboard listening on/,
};

describe('every --help example runs', () => {
  const dir = tempDir('jtm-examples-');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'jtm'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(bin, 'jtm'), 0o755);
  mkdirSync(join(dir, 'examples'));
  copyFileSync(join(ROOT, 'examples', 'sites.json'), join(dir, 'examples', 'sites.json'));
  writeFileSync(join(dir, 'tasks.jsonl'), '{"command":"echo one"}\n{"command":"echo two"}\n');
  const env = testEnv({ PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, JTM_DASHBOARD_PORT: '0' });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has examples for every command', () => {
    for (const id of ORDER) expect(manifest.commands[id]?.examples?.length, id).toBeGreaterThan(0);
    expect(Object.keys(manifest.commands).sort()).toEqual([...ORDER].sort());
  });

  it('gives the examples task 42 to work on', async () => {
    const ctx = await openTestContext(env);
    try {
      await ctx.redis.set(ctx.keys.nextTaskId, '41');
    } finally {
      await closeContext(ctx);
    }
  });

  it.each(examples)('$line', async ({ id, line }) => {
    // Each remove-pool example gets a pool to remove (the first one removed it).
    if (id === 'remove-pool')
      expect((await runJtm(['submit', '-cmd', 'true', '-p', 'small'], env)).code).toBe(0);
    // A port an example names is the user's choice, and may be taken on the machine that runs the suite (the
    // dashboard's 8080 was, by another process: the example exited EADDRINUSE and the row failed): a free one.
    const port = /--port \d+/.test(line) ? String(await (freePort as () => Promise<number>)()) : undefined;
    const run = port === undefined ? line : line.replace(/--port \d+/, `--port ${port}`);
    const child = spawn('bash', ['-c', run], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', d => (out += d));
    child.stderr.on('data', d => (err += d));
    const exited = new Promise<number | null>(r => child.on('close', code => r(code)));
    const up = UP[id];
    const daemon = up !== undefined && !line.includes('--dry-run');
    try {
      if (daemon) {
        // Up, or exited: an example that failed says why at once (below) instead of a 30 s wait.
        await waitFor(() => up.test(out + err) || child.exitCode !== null, `${run} to be up`, 30_000);
        // The first worker runs the queued examples' tasks, so that logs --follow has an end to reach.
        if (id === 'worker') await waitStatus(env, 42, 'success', 30_000);
        child.kill('SIGTERM');
      }
      const code = await Promise.race([
        exited,
        new Promise<'timeout'>(r => setTimeout(() => r('timeout'), 60_000)),
      ]);
      // A command's own error line (`jtm <command>: ...`) means the example does not work as written.
      expect(err, `${line}\nstdout: ${out}\nstderr: ${err}`).not.toMatch(/^jtm [a-z-]*: /m);
      // 0, or the documented 1 of a negative answer (no live worker, no manager).
      const negative = ['check-worker', 'check-manager'].includes(id);
      expect([0, ...(negative ? [1] : [])], `${line}\nstdout: ${out}\nstderr: ${err}`).toContain(code);
      if (id === 'submit') expect(out).toMatch(/JTM task ID \d+|"task_ids"/);
      if (line.includes('--dry-run')) expect(out).toMatch(/#SBATCH/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
