import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ReportData } from '../../src/report/analyse.js';
import type { TaskRecord } from '../../src/store/task-record.js';
import { chromiumRequirement, launchChromium } from '../helpers/browser.js';
import { asRoot, itIf } from '../helpers/requirements.js';
import { BIN, ROOT, runJtm, startJtm, type BackgroundProcess } from '../helpers/cli.js';
import { useTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { submitOne } from '../helpers/submit.js';

// Holds ~60 MB and keeps one core busy for 3 s: several samples with real CPU and memory.
const HEAVY = `python3 -c "
import time
x = bytearray(60 * 1024 * 1024)
t = time.time()
while time.time() - t < 3: pass
"`;

describe('jtm report', () => {
  const env = testEnv();
  const dir = tempDir('jtm-report-');
  const ctx = useTestContext(env);
  let worker: BackgroundProcess;
  let heavyId: number;
  let failedId: number;
  let records: TaskRecord[];

  beforeAll(async () => {
    heavyId = await submitOne(env, [
      '-cmd',
      HEAVY,
      '-p',
      'rep',
      '-jid',
      'cromwell_8a3f2c1d_align',
      '-m',
      '2',
    ]);
    failedId = await submitOne(env, [
      '-cmd',
      'echo no input >&2; exit 3',
      '-p',
      'rep',
      '-jid',
      'cromwell_8a3f2c1d_sort',
    ]);
    const ids = [
      heavyId,
      failedId,
      await submitOne(env, ['-cmd', 'sleep 1', '-p', 'rep']),
      await submitOne(env, ['-cmd', 'true', '-p', 'other']),
    ];
    worker = startJtm(['worker', '-p', 'rep', '--slots', '2'], env);
    await waitFor(
      async () => {
        const statuses = await Promise.all(ids.slice(0, 3).map(id => ctx().tasks.status(id)));
        return statuses.every(s => s !== undefined && (s < 0 || s === 4));
      },
      'tasks finished',
      60_000,
    );
    records = (await Promise.all(ids.map(id => ctx().tasks.get(id)))) as TaskRecord[];
  });
  afterAll(async () => {
    await worker?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('--json: the numbers of the records, per call, failures, timeline and the heaviest task samples', async () => {
    const r = await runJtm(['report', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/report: 4\/4 task records read/);
    const d = JSON.parse(r.stdout) as ReportData;
    expect(d.tasks).toBe(4);
    expect(d.by_status).toEqual({ success: 2, failed: 1, pending: 1 });
    const walls = records
      .filter(t => t.ended_at && t.started_at)
      .map(t => (t.ended_at! - t.started_at!) / 1000);
    expect(d.wall_s?.count).toBe(3);
    expect(d.wall_s?.max).toBe(Math.max(...walls));
    expect(d.failures.latest).toEqual([
      expect.objectContaining({
        id: failedId,
        status_name: 'failed',
        exit_code: 3,
        group: 'sort',
        reason: records[1]!.reason,
      }),
    ]);
    const align = d.groups.find(g => g.name === 'align');
    const heavy = records[0]!;
    expect(align).toMatchObject({
      kind: 'call',
      tasks: 1,
      peak_rss_mb: heavy.peak_rss_mb,
      cpus: 1,
      cpus_assumed: true,
    });
    expect(heavy.peak_rss_mb).toBeGreaterThan(50);
    const wall = (heavy.ended_at! - heavy.started_at!) / 1000;
    expect(align?.cpu_efficiency).toBeCloseTo(heavy.cpu_time_s! / wall, 2);
    expect(d.groups.find(g => g.name === 'sleep')?.kind).toBe('command');
    // Two slots on one worker: every run is a bar, on one of at most two rows of that worker.
    expect(d.timeline.bars.map(b => b.id).sort()).toEqual(
      records
        .slice(0, 3)
        .map(t => t.id)
        .sort(),
    );
    expect(d.timeline.rows.length).toBeLessThanOrEqual(2);
    // The heaviest task's chart data are its samples, as `jtm resource-log` prints them.
    const log = JSON.parse((await runJtm(['resource-log', '-tid', String(heavyId)], env)).stdout) as {
      resource_log: { run_time: number; cpu_load: number; rmem_usage: number }[];
    };
    expect(log.resource_log.length).toBeGreaterThanOrEqual(2);
    const h = d.heaviest.find(x => x.id === heavyId);
    expect(h?.samples).toEqual({
      t: log.resource_log.map(s => s.run_time),
      cpu: log.resource_log.map(s => s.cpu_load),
      mem_mb: log.resource_log.map(s => s.rmem_usage),
    });
  });

  it('filters by pool, workflow and time; rejects a bad --since', async () => {
    const json = async (...args: string[]): Promise<ReportData> =>
      JSON.parse((await runJtm(['report', '--json', ...args], env)).stdout) as ReportData;
    expect((await json('-p', 'other')).tasks).toBe(1);
    expect((await json('--workflow', '8a3f2c1d-0000-4000-8000-000000000000')).tasks).toBe(2);
    expect((await json('--since', '1h')).tasks).toBe(4);
    // How many matched is said (adversary 34 L9: `-p nosuch` wrote an empty report without a word).
    const none = await runJtm(['report', '--json', '-p', 'nosuch'], env);
    expect([none.code, (JSON.parse(none.stdout) as ReportData).tasks]).toEqual([0, 0]);
    expect(none.stderr).toMatch(
      /^report: 0 of 4 task records match the filters \(-p, --workflow, --since\)$/m,
    );
    const all = await runJtm(['report', '--json'], env);
    expect(all.stderr).not.toMatch(/match the filters/);
    const bad = await runJtm(['report', '--since', 'yesterday'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid --since/);
    // Adversary 21 F8: a span reaching before 1970 was taken ("since -271764-03-24"); one line, exit 1.
    const far = await runJtm(['report', '--since', '99999999d'], env);
    expect([far.code, far.stdout]).toEqual([1, '']);
    expect(far.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^jtm report: invalid --since "99999999d": it reaches before 1970-01-01 \(the epoch\); at most \d+d/,
      ),
    ]);
  });

  it('refuses a bad pool name and an unwritable output before reading any record', async () => {
    const pool = await runJtm(['report', '-p', 'a;b', '-o', join(dir, 'never.html')], env);
    expect([pool.code, pool.stdout]).toEqual([1, '']);
    expect(pool.stderr.trim()).toMatch(/^jtm report: invalid pool name "a;b"/);
    expect(existsSync(join(dir, 'never.html'))).toBe(false);
    for (const out of ['/dev/full', dir, join(dir, 'missing', 'r.html')]) {
      const r = await runJtm(['report', '-o', out], env);
      expect([r.code, r.stdout], out).toEqual([1, '']);
      // One line, and no "report: N/M task records read" before it: nothing was read.
      expect(r.stderr.trim().split('\n'), r.stderr).toEqual([
        expect.stringMatching(/^jtm report: cannot write /),
      ]);
    }
  });

  it('a report that fails half way leaves the previous one at its path as it was, and no temporary file', async () => {
    const out = join(dir, 'previous.html');
    writeFileSync(out, 'previous report');
    // Opened before Redis is reached; Redis then cannot be reached.
    const r = await runJtm(['report', '-o', out], { ...env, REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.code).toBe(255);
    expect(readFileSync(out, 'utf8')).toBe('previous report');
    expect(readdirSync(dir).filter(f => f.includes('previous.html'))).toEqual(['previous.html']);
    // And a report that completes replaces it.
    expect((await runJtm(['report', '-o', out], env)).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/^<!doctype html>/);
  });

  it('-o /proc/self/fd/1 (and so /dev/stdout) with stdout a regular file: written through the descriptor, in place', async () => {
    const out = join(dir, 'via-fd.html');
    const fd = openSync(out, 'w');
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, [BIN, 'report', '-o', '/proc/self/fd/1'], {
          env,
          cwd: ROOT,
          stdio: ['ignore', fd, 'ignore'],
        });
        child.on('error', reject);
        child.on('exit', c => resolve(c));
      });
      // Before: "cannot write /proc/self/fd/1" (a temporary file cannot be made in /proc/self/fd), exit 1.
      expect(code).toBe(0);
    } finally {
      closeSync(fd);
    }
    // The report, then the result line (the path) on the same descriptor: nothing written over.
    expect(readFileSync(out, 'utf8')).toMatch(/^<!doctype html>[\s\S]*<\/html>\n?\/proc\/self\/fd\/1\n$/i);
    expect(readdirSync(dir).filter(f => f.includes('via-fd') && f.endsWith('.tmp'))).toEqual([]);
  });

  it('writes no file through symlinks other users planted: at the temp names nor at the path itself (adversary 35 F1)', async () => {
    // Adversary 35 F1: the temp file beside the output was `.<name>.<pid>.tmp`, opened through a symlink; one
    // planted for every pid made root's report overwrite root's mode-600 file. A sticky 1777 directory, as /tmp.
    const pub = join(dir, 'pub');
    mkdirSync(pub);
    chmodSync(pub, 0o1777);
    const victim = join(dir, 'victim');
    const victimOfPath = join(dir, 'victim-of-path');
    writeFileSync(victim, 'VICTIM\n', { mode: 0o600 });
    writeFileSync(victimOfPath, 'VICTIM OF PATH\n', { mode: 0o600 });
    const out = join(pub, 'run.html');
    // Every pid the command may get (the whole range where it is small, as here; else the next 20,000).
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const last = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    const pids =
      pidMax <= 65_536
        ? Array.from({ length: pidMax }, (_, i) => i + 1)
        : Array.from({ length: 20_000 }, (_, i) => ((last + i) % pidMax) + 1);
    for (const pid of pids) symlinkSync(victim, join(pub, `.run.html.${pid}.tmp`));
    // And at the path itself, by another user (nobody): replaced, not written through.
    symlinkSync(victimOfPath, out);
    if (process.getuid?.() === 0) lchownSync(out, 65534, 65534);
    try {
      const r = await runJtm(['report', '-o', out], env);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(victim, 'utf8')).toBe('VICTIM\n');
      expect(readFileSync(victimOfPath, 'utf8')).toBe('VICTIM OF PATH\n');
      const st = lstatSync(out);
      expect(st.isFile()).toBe(true);
      expect(st.mode & 0o777).toBe(0o666 & ~process.umask());
      expect(readFileSync(out, 'utf8')).toMatch(/^<!doctype html>/);
      // Its temp file renamed, none left beside the planted names.
      const left = readdirSync(pub).filter(f => !/^\.run\.html\.\d+\.tmp$/.test(f));
      expect(left).toEqual(['run.html']);
    } finally {
      rmSync(pub, { recursive: true, force: true });
    }
  });

  itIf(
    asRoot('a symlink owned by another user (nobody) is planted with lchown'),
    'a FIFO is written in place, but not through a symlink another user planted at the path (adversary 35 F1)',
    async () => {
      // A device or FIFO is written in place (/dev/stdout, a pipe): a symlink of another user's at the path,
      // to a FIFO that user reads, is not followed there but replaced by the report file.
      const pub = join(dir, 'pub-fifo');
      mkdirSync(pub);
      chmodSync(pub, 0o1777);
      const fifo = join(dir, 'their-fifo');
      execFileSync('mkfifo', [fifo]);
      const out = join(pub, 'run.html');
      symlinkSync(fifo, out);
      lchownSync(out, 65534, 65534);
      // Something reads the FIFO: a report written through the symlink would be read there.
      const reader = spawn('cat', [fifo]);
      let read = '';
      reader.stdout.on('data', (b: Buffer) => (read += b.toString()));
      try {
        const r = await runJtm(['report', '-o', out], env);
        expect(r.code, r.stderr).toBe(0);
        expect(lstatSync(out).isFile()).toBe(true);
        expect(readFileSync(out, 'utf8')).toMatch(/^<!doctype html>/);
        expect(read).toBe('');
      } finally {
        reader.kill();
        rmSync(pub, { recursive: true, force: true });
        rmSync(fifo, { force: true });
      }
    },
  );

  itIf(
    chromiumRequirement,
    'the HTML file works offline in Chromium: timeline and charts drawn from the samples',
    async () => {
      const file = join(dir, 'run.html');
      const r = await runJtm(['report', '-o', file], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(file);
      const html = readFileSync(file, 'utf8');
      expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
      const browser = await launchChromium();
      try {
        const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
        const requests: string[] = [];
        page.on('request', req => requests.push(req.url()));
        const errors: string[] = [];
        page.on('pageerror', e => errors.push(e.message));
        await page.goto(`file://${file}`);
        // Strings: the test's TypeScript has no DOM types.
        const charts = (await page.evaluate(
          'window.jtmCharts.map(c => ({ kind: c.kind, task: c.task, points: c.points, data: c.chart && c.chart.data }))',
        )) as { kind: string; task?: number; points: number; data?: number[][] }[];
        expect(errors).toEqual([]);
        expect(requests.every(u => u.startsWith('file:'))).toBe(true);
        expect(charts.find(c => c.kind === 'timeline')?.points).toBe(3);
        const log = JSON.parse((await runJtm(['resource-log', '-tid', String(heavyId)], env)).stdout) as {
          resource_log: { run_time: number; cpu_load: number; rmem_usage: number }[];
        };
        const usage = charts.find(c => c.kind === 'usage' && c.task === heavyId);
        expect(usage?.data).toEqual([
          log.resource_log.map(s => s.run_time),
          log.resource_log.map(s => s.cpu_load),
          log.resource_log.map(s => s.rmem_usage),
        ]);
        // Drawn, not just configured: the timeline canvas has the colour of a success bar.
        const green = (await page.evaluate(`(() => {
        const c = document.getElementById('timeline');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i] === 0x16 && px[i + 1] === 0xa3 && px[i + 2] === 0x4a) n++;
        return n;
      })()`)) as number;
        expect(green).toBeGreaterThan(50);
        expect(await page.locator('.u-wrap canvas').count()).toBeGreaterThanOrEqual(1);
        // The call's name in a chart's title is isolated (FSI … PDI): its direction stays inside it.
        expect(await page.locator('.u-title').allTextContents()).toContainEqual(
          expect.stringContaining(`task ${heavyId} · \u2068align\u2069 · success`),
        );
        // Off the chart, a usage chart's legend gives each series' largest value (it said "--" for every series).
        const shown = (v: number): string => (Math.round(v * 10) / 10).toLocaleString('en-US');
        const legend = await page.locator('.u-legend').first().innerText();
        expect(legend).toContain(`max ${shown(Math.max(...log.resource_log.map(s => s.cpu_load)))}`);
        expect(legend).toContain(`max ${shown(Math.max(...log.resource_log.map(s => s.rmem_usage)))}`);
        expect(legend).not.toContain('--');
        mkdirSync(join(ROOT, 'test-output'), { recursive: true });
        await page.screenshot({ path: join(ROOT, 'test-output', 'report.png'), fullPage: true });
      } finally {
        await browser.close();
      }
    },
  );
});

describe('jtm report made while a task runs', () => {
  const env = testEnv();
  const ctx = useTestContext(env);
  let worker: BackgroundProcess | undefined;
  afterAll(async () => {
    await worker?.stop('SIGKILL');
  });

  it("a call's row counts its running tasks' peaks so far, not only its ended tasks' (adversary 21 F5)", async () => {
    const jid = ['-jid', 'cromwell_8a3f2c1d_mid', '-p', 'repmid'];
    const small = await submitOne(env, ['-cmd', 'true', ...jid]);
    worker = startJtm(['worker', '-p', 'repmid', '--slots', '2'], env);
    await waitFor(async () => (await ctx().tasks.status(small)) === 4, 'small task ended', 30_000);
    const big = await submitOne(env, [
      '-cmd',
      `python3 -c 'import time; x=bytearray(120*1024*1024); x[::4096]=b"\\x01"*len(x[::4096]); time.sleep(60)'`,
      ...jid,
    ]);
    // Until a sample of the big run is in its stream with the memory touched.
    await waitFor(
      async () => {
        const last = await ctx().redis.xrevrange(ctx().keys.taskResources(big), '+', '-', 'COUNT', 1);
        const sample = last[0]?.[1][1];
        return (
          sample !== undefined && Number((JSON.parse(sample) as { rmem_usage: number }).rmem_usage) >= 100
        );
      },
      'a sample of the running task with its memory',
      30_000,
    );
    const r = await runJtm(['report', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const mid = (JSON.parse(r.stdout) as ReportData).groups.find(g => g.name === 'mid');
    expect(mid?.by_status).toEqual({ success: 1, running: 1 });
    expect(mid?.peak_rss_mb).toBeGreaterThanOrEqual(100);
    expect(mid?.suggestion).toMatch(/\(1 task still running: peak so far\)$/);
    expect((await runJtm(['kill', '-tid', String(big)], env)).code).toBe(0);
  });
});
