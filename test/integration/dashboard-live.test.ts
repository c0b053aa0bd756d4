import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { chromiumRequirement, SHOTS, useChromium } from '../helpers/browser.js';
import { describeIf } from '../helpers/requirements.js';
import { runJtm, startJtm, type BackgroundProcess } from '../helpers/cli.js';
import { useTestContext } from '../helpers/context.js';
import { startDashboard } from '../helpers/dashboard.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { submitOne } from '../helpers/submit.js';

// Prints a line every 0.3 s, holding 50 MB and keeping a core busy, until the test creates the stop file
// (at most 60 s): the test, not the clock, decides when it ends.
const ticker = (stopFile: string): string => `python3 -u -c "
import os, time
x = bytearray(50 * 1024 * 1024)
t = time.time(); n = 0
while not os.path.exists('${stopFile}') and time.time() - t < 60:
    n += 1
    print('tick', n)
    e = time.time() + 0.3
    while time.time() < e: pass
"`;

interface Drawn {
  kind: string;
  points: number;
  data?: number[][];
}

describeIf(chromiumRequirement, 'dashboard task and pool pages in Chromium', () => {
  const env = testEnv();
  const dir = tempDir('jtm-live-');
  const ctx = useTestContext(env);
  const browser = useChromium();
  let worker: BackgroundProcess;
  let dashboard: BackgroundProcess;
  let url: string;

  beforeAll(async () => {
    worker = startJtm(['worker', '-p', 'live', '--slots', '2'], env);
    ({ proc: dashboard, url } = await startDashboard(env, ['--allow-actions']));
  });
  afterAll(async () => {
    await Promise.all([dashboard?.stop(), worker?.stop('SIGKILL')]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('task page: charts drawn from the samples, output followed live, kill button', async () => {
    const stopFile = join(dir, 'stop');
    const id = await submitOne(env, ['-cmd', ticker(stopFile), '-p', 'live']);
    await waitFor(async () => (await ctx().tasks.status(id)) === 3, 'running', 30_000);
    const page = await browser().newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`${url}task/live?id=${id}`);
    // Live: lines arrive while the task still runs.
    await page.locator('#output', { hasText: 'tick 2' }).waitFor({ timeout: 20_000 });
    const seen = Math.max(
      ...[...((await page.locator('#output').textContent()) ?? '').matchAll(/tick (\d+)/g)].map(m =>
        Number(m[1]),
      ),
    );
    // Followed: later lines appear without a reload (server-sent events).
    await page.locator('#output', { hasText: `tick ${seen + 3}\n` }).waitFor({ timeout: 20_000 });
    expect(await ctx().tasks.status(id)).toBe(3);
    expect(await page.locator('#kill').count()).toBe(1);
    // The workers page shows the worker's load, from the latest sample of the task it runs.
    const workers = await browser().newPage();
    const load = await waitFor(
      async () => {
        await workers.goto(`${url}workers`);
        const text = (await workers.locator('.load').first().textContent()) ?? '';
        return Number(/(\d+) MB/.exec(text)?.[1]) > 0 ? text : undefined;
      },
      'worker load from a sample',
      15_000,
    );
    expect(load).toMatch(/^\d+ % CPU · \d+ MB$/);
    await workers.screenshot({ path: join(SHOTS, 'dashboard-workers-load.png'), fullPage: true });
    await workers.close();
    // At least 3 samples before it ends, so that the chart has a shape.
    await waitFor(
      async () => (await ctx().redis.xlen(ctx().keys.taskResources(id))) >= 3,
      '3 samples',
      30_000,
    );
    // The live chart's legend follows the samples it is given (setData every 2 s): off the chart, the largest
    // memory drawn so far, not the one of its first drawing.
    const legendFollows = `(() => {
      const c = window.jtmCharts[0] && window.jtmCharts[0].chart;
      if (!c || c.data[0].length < 3) return undefined;
      const max = Math.max(...c.data[2].filter(v => v != null));
      const text = document.querySelector('.u-legend').innerText;
      return text.includes('max ' + (Math.round(max * 10) / 10).toLocaleString('en-US')) ? text : undefined;
    })()`;
    await waitFor(
      async () => (await page.evaluate(legendFollows)) as string | undefined,
      'the legend of 3 samples',
      20_000,
    );
    writeFileSync(stopFile, '');
    await waitFor(async () => (await ctx().tasks.status(id)) === 4, 'success', 30_000);
    await page.locator('#follow', { hasText: 'task ended' }).waitFor({ timeout: 20_000 });
    const out = (await page.locator('#output').textContent()) ?? '';
    const printed = (await runJtm(['logs', '-tid', String(id)], env)).stdout;
    expect(out.replace(/\r/g, '')).toBe(printed.replace(/\r/g, ''));
    // The chart refreshes every 2 s while the task runs; reload for the final samples.
    await page.reload();
    await waitFor(
      async () => ((await page.evaluate('window.jtmCharts.length')) as number) > 0,
      'chart drawn',
      20_000,
    );
    const drawn = (await page.evaluate(
      'window.jtmCharts.map(c => ({ kind: c.kind, points: c.points, data: c.chart && c.chart.data }))',
    )) as Drawn[];
    const log = JSON.parse((await runJtm(['resource-log', '-tid', String(id)], env)).stdout) as {
      resource_log: { run_time: number; cpu_load: number; rmem_usage: number }[];
    };
    expect(log.resource_log.length).toBeGreaterThanOrEqual(3);
    expect(drawn[0]?.data).toEqual([
      log.resource_log.map(s => s.run_time),
      log.resource_log.map(s => s.cpu_load),
      log.resource_log.map(s => s.rmem_usage),
    ]);
    expect(Math.max(...log.resource_log.map(s => s.rmem_usage))).toBeGreaterThan(40);
    await page.screenshot({ path: join(SHOTS, 'dashboard-task-live.png'), fullPage: true });
    expect(await page.locator('#kill').count()).toBe(0);

    // The kill button of a running task ends it.
    const sleeper = await submitOne(env, ['-cmd', 'sleep 60', '-p', 'live']);
    await waitFor(async () => (await ctx().tasks.status(sleeper)) === 3, 'sleeper running', 30_000);
    await page.goto(`${url}task/live?id=${sleeper}`);
    await page.locator('#kill').click();
    await waitFor(async () => (await ctx().tasks.status(sleeper)) === -4, 'terminated', 30_000);
    await page.close();
  });

  it('pool page: per-minute series from the records, Slurm allocations table', async () => {
    const page = await browser().newPage({ viewport: { width: 1200, height: 800 } });
    await page.goto(`${url}workers`);
    await page.getByRole('link', { name: 'live' }).first().click();
    await page.locator('#chart canvas').first().waitFor({ timeout: 20_000 });
    const drawn = (await page.evaluate(
      'window.jtmCharts.map(c => ({ kind: c.kind, points: c.points, data: c.chart && c.chart.data }))',
    )) as Drawn[];
    const pool = drawn.find(c => c.kind === 'pool');
    expect(pool?.points).toBe(60);
    const [, , , finished, failed] = pool?.data ?? [];
    // Two tasks ended within the hour: one success, one terminated (a failure in this view).
    expect(finished?.reduce((a, b) => a + b, 0)).toBe(1);
    expect(failed?.reduce((a, b) => a + b, 0)).toBe(1);
    expect(await page.locator('body').textContent()).toContain('No Slurm allocation.');
    // Adversary 37 F7: "finished / min" counted successes only, and the legend said "--" until hovered: it
    // gives the latest minute's values, named for what they count.
    const legend = await page.locator('.u-legend').first().innerText();
    expect(legend).toContain('succeeded / min');
    expect(legend).not.toContain('finished');
    expect(legend).not.toContain('--');
    expect(legend).toContain('(latest)');
    await page.screenshot({ path: join(SHOTS, 'dashboard-pool.png'), fullPage: true });
    expect((await fetch(`${url}pool?name=nope`)).status).toBe(404);
    expect((await fetch(`${url}pool?name=${encodeURIComponent('a b')}`)).status).toBe(400);
    await page.close();
  });
});
