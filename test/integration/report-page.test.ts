import { join } from 'node:path';

import { expect, it } from 'vitest';

import { analyse, type HeavyTask } from '../../src/report/analyse.js';
import { reportHtml } from '../../src/report/report-html.js';
import { parseTaskRecord, type TaskRecord } from '../../src/store/task-record.js';
import { SHOTS, useChromium } from '../helpers/browser.js';
import { describeIf, findChromium } from '../helpers/requirements.js';

// The report page drawn by Chromium from made-up data (no Redis): what the charts and axes show.
const chromiumBinary = findChromium();

function heavy(id: number, n: number, fields: Partial<HeavyTask> = {}): HeavyTask {
  const t = Array.from({ length: n }, (_, i) => i * 5);
  return {
    id,
    group: 'oom',
    status_name: 'outofresource',
    why: 'memory',
    peak_rss_mb: 205,
    cpu_time_s: 0.4,
    run_s: 0.4,
    samples: { t, cpu: t.map(() => 90), mem_mb: t.map(() => 150) },
    ...fields,
  };
}

describeIf(chromiumBinary, 'the report page in Chromium', () => {
  const browser = useChromium(chromiumBinary.path);

  // Adversary 37 F3: a 1-sample chart had an x axis of 0–90 s next to "run time: 0 s"; two flat `sleep`s stood
  // alone under "the tasks that used the most" while the 205 MB tasks without samples were left out.
  it('charts only tasks with two samples or more, each over its own run time', async () => {
    const one = parseTaskRecord({
      id: '1',
      status: '4',
      command: 'true',
      pool: 'p',
      attempts: '1',
    }) as TaskRecord;
    const { data } = analyse([one], {}, 5000);
    data.heaviest = [
      heavy(41, 0),
      heavy(42, 1, { run_s: 0.9 }),
      heavy(43, 3, { run_s: 12.5, why: 'cpu', status_name: 'success' }),
      heavy(77, 4, { run_s: 900, why: 'running', status_name: 'running', peak_rss_mb: 2 }),
    ];
    const page = await browser().newPage({ viewport: { width: 1300, height: 900 } });
    try {
      const errors: string[] = [];
      page.on('pageerror', e => errors.push(e.message));
      await page.setContent(reportHtml(data));
      // Strings: the test's TypeScript has no DOM types.
      const charts = (await page.evaluate(
        `window.jtmCharts.filter(c => c.kind === 'usage').map(c => ({ task: c.task, box: c.chart.root.parentNode.parentNode.id, x: [c.chart.scales.x.min, c.chart.scales.x.max] }))`,
      )) as { task: number; box: string; x: number[] }[];
      expect(errors).toEqual([]);
      expect(charts).toEqual([
        { task: 43, box: 'charts', x: [0, 12.5] },
        { task: 77, box: 'running-charts', x: [0, 900] },
      ]);
      await page.screenshot({ path: join(SHOTS, 'report-heaviest.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  // Adversary 37 F6: the timeline had two time labels, its first and last instant.
  it('gives the timeline a clock axis with round ticks between its ends', async () => {
    const t0 = Date.UTC(2026, 11, 5, 10, 0, 20);
    const run = (id: number, start: number, end: number): TaskRecord =>
      parseTaskRecord({
        id: String(id),
        status: '4',
        command: 'true',
        pool: 'p',
        attempts: '1',
        queued_at: String(t0),
        started_at: String(t0 + start),
        ended_at: String(t0 + end),
        worker_id: 'vm-1-abcdef',
      }) as TaskRecord;
    // 17 minutes: from 10:00:20 to 10:17:20.
    const { data } = analyse([run(1, 0, 60_000), run(2, 120_000, 1_020_000)], {}, t0 + 2_000_000);
    const page = await browser().newPage({ viewport: { width: 1300, height: 900 } });
    try {
      await page.setContent(reportHtml(data));
      const ticks = (await page.evaluate(
        `window.jtmCharts.find(c => c.kind === 'timeline').ticks`,
      )) as string[];
      expect(ticks).toEqual(['10:02', '10:04', '10:06', '10:08', '10:10', '10:12', '10:14', '10:16']);
      await page.locator('#timeline').screenshot({ path: join(SHOTS, 'report-timeline.png') });
    } finally {
      await page.close();
    }
  });
});
