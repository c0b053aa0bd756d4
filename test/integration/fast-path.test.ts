import { existsSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { normaliseArgv } from '../../src/cli/argv.js';
import { compileWithCodeCache } from '../../src/cli/fast/code-cache.js';
import { planFastPath } from '../../src/cli/fast/fast-path.js';
import { readManifest } from '../../src/cli/fast/manifest.js';
import { parsePlainArgv } from '../../src/cli/fast/parse-argv.js';
import { submitTasks } from '../../src/tasks/submit-task.js';
import { buildTask } from '../../src/tasks/task-spec.js';
import { runJtm, ROOT, type CliResult } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv } from '../helpers/env.js';

const OCLIF_ONLY = fileURLToPath(new URL('../helpers/oclif-only.mjs', import.meta.url));
const manifest = readManifest(new URL('../../oclif.manifest.json', import.meta.url));
// The example site profiles, for `worker -wt dynamic --dry-run` (a --config file: the other cases keep theirs).
const SITES_CONFIG = join(tempDir('jtm-fp-sites-'), 'jtm.conf');
writeFileSync(SITES_CONFIG, `JTM_SITE_CONFIG=${join(ROOT, 'examples', 'sites.json')}\n`);

/** Whether bin/run.js takes the fast path for this command line (else it hands it to oclif). */
function takesFastPath(args: readonly string[]): boolean {
  return planFastPath(normaliseArgv('jtm', args), manifest) !== undefined;
}

/** Task ids and timestamps differ between the two runs; everything else must be identical. */
function comparable(r: CliResult): CliResult {
  // Each submit has its own random submit id (its commit key): not a difference between the two paths.
  const digits = (s: string): string =>
    s.replace(/"submit_id": ?"[^"]*"/g, '"submit_id":"S"').replace(/\d+/g, 'N');
  return { code: r.code, stdout: digits(r.stdout), stderr: digits(r.stderr) };
}

// `{id}` is replaced by a fresh pending task for each run (kill changes it, so each run gets its own).
const CASES: { args: string[]; fast: boolean }[] = [
  { args: ['isalive', '-tid', '{id}'], fast: true },
  { args: ['isalive', '{id}'], fast: true },
  { args: ['isalive', '--task-id', '{id}'], fast: true },
  { args: ['isalive', '-tid', '999999'], fast: true },
  { args: ['isalive', '-tid', 'abc'], fast: true },
  { args: ['status', '-tid', '{id}'], fast: true },
  { args: ['status', '--task_id={id}', '--log-level', 'error'], fast: true },
  { args: ['status', '-tid', '{id}', '--debug'], fast: true },
  { args: ['status', '-tid', '999999'], fast: true },
  { args: ['submit', '-cmd', 'echo hi', '-p', 'fp'], fast: true },
  {
    args: ['submit', '-cmd', 'ls', '-p', 'fp', '-cl', 'local', '-c', '2', '-N', '1', '-s', '1'],
    fast: true,
  },
  { args: ['submit', '-cr', 'ls', '-p', 'fp', '-m', '4.5', '-t', '00:10:00', '-nwpn', '2'], fast: true },
  { args: ['submit', '-cmd', 'ls', '-p', 'a;b'], fast: true },
  { args: ['submit', '-cmd', 'ls', '-p', 'x', '-t', '1:2'], fast: true },
  { args: ['submit', '-cmd', '', '-p', 'x'], fast: true },
  { args: ['submit', '-p', 'x'], fast: true },
  { args: ['submit', '-f', '/nonexistent/tasks.json', '-p', 'x'], fast: true },
  { args: ['kill', '-tid', '{id}'], fast: true },
  { args: ['kill', '-tid', '{id}', '--wait', '2s'], fast: true },
  { args: ['kill', '-tid', '{id}', '--wait', 'soon'], fast: true },
  { args: ['kill', '-tid', '999999'], fast: true },
  // Issue 12: two different ids are refused on both paths; a value starting with '-' goes to oclif.
  { args: ['kill', '999999', '-tid', '{id}'], fast: true },
  { args: ['isalive', '7', '-tid', '{id}'], fast: true },
  { args: ['submit', '-cmd', '-p x', '-p', 'fp'], fast: false },
  { args: ['submit', '-cmd', 'ls', '-p', 'fp', '-zf=yes'], fast: false },
  // Not plain: oclif's own help and errors.
  { args: ['status', '-tid', '{id}', '--json'], fast: false },
  { args: ['status', '--help'], fast: false },
  { args: ['status', '-tid', '1', 'extra', 'more'], fast: false },
  { args: ['status', '-tid', '{id}', 'extra'], fast: true },
  { args: ['isalive', '-tid', '-3'], fast: false },
  { args: ['isalive', '-tid', '1', '--log-level', 'loud'], fast: false },
  { args: ['kill'], fast: false },
  { args: ['submit', '-cmd', 'ls', '-p', 'x', '--bogus'], fast: false },
  { args: ['submit', '-cmd', 'ls', '-p', 'x', '-p', 'y'], fast: false },
  { args: ['submit', '-cmd', 'ls', '-p', 'x', '-c', '0'], fast: false },
  { args: ['submit', '-cmd', 'ls', '-p', 'x', '-s', '2'], fast: false },
  { args: ['submit', '-cmd', 'ls', '-p', 'x', '-c', 'two'], fast: false },
  { args: ['submit', '-cmd', 'ls', '-p'], fast: false },
  // The worker a batch script starts (here one that idles out at once), and `-wt dynamic` without -j.
  { args: ['worker', '-p', 'fpw', '--idle-timeout', '1ms', '--log-level', 'error'], fast: true },
  {
    args: [
      'worker',
      '-wt',
      'dynamic',
      '-j',
      '12',
      '-p',
      'fpw',
      '-t',
      '00:10:00',
      '--idle-timeout=1ms',
      '--worker_id',
      'wfp2',
    ],
    fast: true,
  },
  {
    args: [
      `--config=${SITES_CONFIG}`,
      ...['worker', '-wt', 'dynamic', '-cl', 'test', '-p', 'fpw', '-t', '00:10:00', '-N', '2'],
      ...['-nwpn', '2', '--worker_id', 'wfp', '--pin-cores', '--dry-run'],
    ],
    fast: true,
  },
  { args: ['worker', '-wt', 'dynamic', '-cl', 'local', '-p', 'fpw', '-t', '00:10:00'], fast: true },
  { args: ['worker', '-p', 'a;b'], fast: true },
  { args: ['worker', '-p', 'fpw', '--slots', '0'], fast: false },
  {
    args: ['worker', '-p', 'fpw', '--no-pin-cores', '--idle-timeout', '1ms', '--worker_id', 'wfp3'],
    fast: false,
  },
  { args: ['worker', '-wt', 'dynamic', '-p', 'fpw', '--sbatch-arg=--comment=x', '-dr'], fast: false },
];

describe('fast path of bin/run.js', () => {
  const env = testEnv();
  let ctx: JtmContext;
  const freshTask = async (): Promise<number> => {
    const task = buildTask({ command: 'true' }, { pool: 'fp', cwd: ROOT, maxCommandBytes: 65536 });
    const [id] = await submitTasks(ctx, [task]);
    return id as number;
  };
  const run = async (args: string[], script?: string): Promise<CliResult> => {
    const id = args.some(a => a.includes('{id}')) ? String(await freshTask()) : '';
    return runJtm(
      args.map(a => a.replace('{id}', id)),
      env,
      script ? { argv0: script } : {},
    );
  };

  beforeAll(async () => {
    ctx = await openTestContext(env);
  });
  afterAll(async () => {
    await closeContext(ctx);
  });

  it('finds every hot command parseable in the manifest', () => {
    for (const id of ['isalive', 'status', 'submit', 'kill'])
      expect(parsePlainArgv(manifest!.commands[id]!, ['--config=/dev/null'])).toBeDefined();
  });

  it('runs hot commands from the CommonJS bundle, whose V8 code cache a successful run writes for the next', async () => {
    const bundle = join(ROOT, 'dist', 'fast', 'main.cjs');
    const { cacheFile } = compileWithCodeCache(bundle, 'isalive');
    rmSync(cacheFile, { force: true });
    expect((await run(['isalive', '-tid', '{id}'])).code).toBe(0);
    // Written as the process exits (another test file's isalive may have written it too: either is valid).
    expect(existsSync(cacheFile)).toBe(true);
    expect(compileWithCodeCache(bundle, 'isalive').cache).toBe('accepted');
    // The legacy name runs the same command from the same bundle, and writes the same cache.
    const legacy = join(tempDir('jtm-fp-legacy-'), 'jtm-isalive');
    symlinkSync(join(ROOT, 'bin', 'run.js'), legacy);
    rmSync(cacheFile, { force: true });
    expect((await run(['{id}'], legacy)).code).toBe(0);
    expect(existsSync(cacheFile)).toBe(true);
  });

  it('names a legacy flag as it was typed in oclif\'s refusal (adversary 15 P11c: "--task_id=5" for -tid 5)', async () => {
    for (const [typed, shown] of [
      [['-tid', '5'], '-tid 5'],
      [['-tid=5'], '-tid=5'],
      [['-dr=yes'], '-dr=yes'],
    ] as const) {
      const r = await run(['submit', '-cmd', 'true', '-p', 'fp', ...typed]);
      expect(r).toMatchObject({ code: 1, stdout: '', stderr: `jtm submit: Nonexistent flag: ${shown}\n` });
    }
  });

  // Concurrent (up to vitest's maxConcurrency): each case has its own fresh task, and its two runs stay in
  // order; the cases only wait for their processes, so a few at a time use the CPU the rest of the suite
  // leaves idle instead of queueing 94 cold starts one behind another.
  it.concurrent.each(CASES)('$args: same stdout, stderr and exit code as oclif', async ({ args, fast }) => {
    expect(takesFastPath(args.map(a => a.replace('{id}', '1')))).toBe(fast);
    const viaBin = await run(args);
    const viaOclif = await run(args, OCLIF_ONLY);
    expect(comparable(viaBin)).toEqual(comparable(viaOclif));
  });
});
