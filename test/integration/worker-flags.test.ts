import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { runJtm, taskIds } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';

describe('worker flags kept for the original JTM', () => {
  it('-r/--show_resource_log is accepted (the original had it) but no longer offered in --help', async () => {
    const env = testEnv();
    const help = await runJtm(['worker', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).not.toContain('show_resource_log');
    // The worker starts with it, finds no task and exits on its idle timeout.
    const r = await runJtm(['worker', '-p', 'flags', '-r', '--idle-timeout', '1s'], env);
    expect(r.code, r.stderr).toBe(0);
  });

  it('an old jtm-worker launch line starts: -to, -ct, -nw, -J ignored, -zf honoured, no -tp serves small, -v (adversary 9 J1)', async () => {
    const env = testEnv();
    const dir = tempDir('jtm-legacy-worker-');
    const jtmWorker = join(dir, 'jtm-worker');
    writeFileSync(jtmWorker, `import '${join(process.cwd(), 'bin', 'run.js')}';\n`);
    const version = await runJtm(['-tp', 'x', '-v'], env, { argv0: jtmWorker });
    expect(version.stdout).toMatch(/^jtm\/\d/);
    // A task of the original's `-p default` (its `small`), with an output file it leaves empty.
    const out = join(dir, 'empty.out');
    const file = join(dir, 'task.json');
    writeFileSync(file, JSON.stringify({ command: `touch ${out}`, output_files: out }));
    const jtmSubmit = join(dir, 'jtm-submit');
    writeFileSync(jtmSubmit, `import '${join(process.cwd(), 'bin', 'run.js')}';\n`);
    const sub = await runJtm(['-p', 'default', '-f', file], env, { argv0: jtmSubmit });
    expect(sub.code, sub.stderr).toBe(0);
    const [id] = taskIds(sub.stdout);
    const ctx = await openTestContext(env);
    expect((await ctx.tasks.get(id!))?.pool).toBe('small');
    const w = await runJtm(
      ['-zf', '-to', '30', '-ct', '0.2', '-nw', '2', '-J', 'name', '--idle-timeout', '2s'],
      env,
      { argv0: jtmWorker },
    );
    expect(w.code, w.stderr).toBe(0);
    // Its empty output accepted by the worker's -zf, as the original's.
    await waitFor(async () => (await ctx.tasks.get(id!))?.status_name === 'success' || undefined, 'the task');
    await closeContext(ctx);
  });
});
