import parsePrometheusTextFormat, {
  type ParsedFamily,
  type ParsedSample,
} from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { PoolInfo } from '../../src/pools/list-pools.js';
import type { TaskRecord } from '../../src/store/task-record.js';
import { runJtm, startJtm, type BackgroundProcess } from '../helpers/cli.js';
import { useTestContext } from '../helpers/context.js';
import { startDashboard } from '../helpers/dashboard.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { submitOne } from '../helpers/submit.js';

async function scrape(url: string, headers: Record<string, string> = {}): Promise<ParsedFamily[]> {
  const res = await fetch(url, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusTextFormat(await res.text());
}

/** value of `name` for the sample whose labels include `labels` (undefined when absent). */
function value(
  families: ParsedFamily[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const f = families.find(x => x.name === name);
  const s = f?.metrics.find(m => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return s?.value === undefined ? undefined : Number(s.value);
}

/**
 * One pool's series of a histogram. parse-prometheus-text-format 1.1.1 merges the series of a labelled
 * histogram into one (it keys buckets by `le` alone), so the pool's lines are picked and unlabelled first.
 */
function histogramOf(text: string, name: string, pool: string): ParsedSample | undefined {
  const mine = text
    .split('\n')
    .filter(l =>
      l.startsWith('#') ? l.includes(` ${name} `) : l.startsWith(name) && l.includes(`pool="${pool}"`),
    )
    .map(l => l.replace(`pool="${pool}",`, '').replace(`{pool="${pool}"}`, ''));
  return parsePrometheusTextFormat(`${mine.join('\n')}\n`).find(f => f.name === name)?.metrics[0];
}

const auth = (user: string, password: string): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

describe('Prometheus metrics', () => {
  const env = testEnv();
  const ctx = useTestContext(env);
  let worker: BackgroundProcess;
  let manager: BackgroundProcess;
  let dashboard: BackgroundProcess;
  let managerUrl: string;
  let dashboardUrl: string;
  let runningId: number;
  let doneIds: number[];

  beforeAll(async () => {
    doneIds = [
      await submitOne(env, ['-cmd', 'true', '-p', 'm1']),
      await submitOne(env, ['-cmd', 'sleep 0.3', '-p', 'm1']),
      await submitOne(env, ['-cmd', 'exit 4', '-p', 'm1']),
    ];
    runningId = await submitOne(env, ['-cmd', 'sleep 60', '-p', 'm1']);
    await submitOne(env, ['-cmd', 'true', '-p', 'm2']);
    worker = startJtm(['worker', '-p', 'm1', '--slots', '2'], env);
    await waitFor(async () => {
      const s = await Promise.all([...doneIds, runningId].map(id => ctx().tasks.status(id)));
      return s.slice(0, 3).every(x => x !== undefined && (x < 0 || x === 4)) && s[3] === 3;
    }, 'three tasks ended, one running');
    manager = startJtm(['manager', '--metrics-port', '0'], env);
    managerUrl = await waitFor(
      () => /"url":"(http:\/\/[^"]+\/metrics)"[^\n]*metrics listening/.exec(manager.output())?.[1],
      'manager metrics listening',
      30_000,
    );
    const started = await startDashboard(env);
    dashboard = started.proc;
    dashboardUrl = `${started.url}metrics`;
  });
  afterAll(async () => {
    await Promise.all([manager?.stop(), dashboard?.stop(), worker?.stop('SIGKILL')]);
  });

  it('counters, gauges and histograms match the records and `jtm pools`; every process exports the same', async () => {
    expect(managerUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const m = await scrape(managerUrl);
    expect(value(m, 'jtm_tasks_submitted_total', { pool: 'm1' })).toBe(4);
    expect(value(m, 'jtm_tasks_submitted_total', { pool: 'm2' })).toBe(1);
    expect(value(m, 'jtm_tasks_finished_total', { pool: 'm1', status: 'success' })).toBe(2);
    expect(value(m, 'jtm_tasks_finished_total', { pool: 'm1', status: 'failed' })).toBe(1);
    const pools = JSON.parse((await runJtm(['pools', '--json'], env)).stdout) as PoolInfo[];
    for (const p of pools) {
      expect(value(m, 'jtm_tasks_queued', { pool: p.name }), p.name).toBe(p.waiting + p.delayed);
      expect(value(m, 'jtm_tasks_running', { pool: p.name }), p.name).toBe(p.active);
      expect(value(m, 'jtm_workers', { pool: p.name }), p.name).toBe(p.live_workers);
      expect(value(m, 'jtm_worker_slots', { pool: p.name }), p.name).toBe(p.live_slots);
    }
    expect(value(m, 'jtm_tasks_queued', { pool: 'm2' })).toBe(1);
    expect(value(m, 'jtm_tasks_running', { pool: 'm1' })).toBe(1);
    expect(value(m, 'jtm_worker_slots', { pool: 'm1' })).toBe(2);

    const records = (await Promise.all(doneIds.map(id => ctx().tasks.get(id)))) as TaskRecord[];
    const text = await (await fetch(managerUrl)).text();
    const duration = histogramOf(text, 'jtm_task_duration_seconds', 'm1');
    expect(duration?.count).toBe('3');
    const sum = records.reduce((s, r) => s + (r.ended_at! - r.started_at!) / 1000, 0);
    expect(Number(duration?.sum)).toBeCloseTo(sum, 3);
    expect(duration?.buckets?.['+Inf']).toBe('3');
    expect(Number(duration?.buckets?.['1'])).toBe(
      records.filter(r => r.ended_at! - r.started_at! <= 1000).length,
    );
    const wait = histogramOf(text, 'jtm_task_queue_wait_seconds', 'm1');
    expect(wait?.count).toBe('3');
    expect(Number(wait?.sum)).toBeCloseTo(
      records.reduce((s, r) => s + (r.started_at! - r.queued_at!) / 1000, 0),
      3,
    );
    expect(value(m, 'jtm_redis_roundtrip_seconds')).toBeGreaterThan(0);
    await waitFor(async () => value(await scrape(managerUrl), 'jtm_manager_sweeps_total')! > 0, 'a sweep');
    expect(value(await scrape(managerUrl), 'jtm_manager_sweep_duration_seconds')).toBeGreaterThanOrEqual(0);

    // Kill the running task: counted once, as terminated, whichever process is scraped.
    expect((await runJtm(['kill', '-tid', String(runningId)], env)).code).toBe(0);
    await waitFor(async () => (await ctx().tasks.status(runningId)) === -4, 'terminated');
    const [a, b] = await Promise.all([scrape(managerUrl), scrape(dashboardUrl)]);
    for (const fam of [a, b]) {
      expect(value(fam, 'jtm_tasks_finished_total', { pool: 'm1', status: 'terminated' })).toBe(1);
      expect(value(fam, 'jtm_tasks_finished_total', { pool: 'm1', status: 'success' })).toBe(2);
      expect(value(fam, 'jtm_tasks_submitted_total', { pool: 'm1' })).toBe(4);
    }
  });

  it('exposure: beyond loopback only with credentials, which then guard the endpoint', async () => {
    const exposed = startJtm(['manager', '--metrics-host', '0.0.0.0', '--metrics-port', '0'], env);
    expect(await exposed.exited).toBe(1);
    expect(exposed.output()).toMatch(/JTM_DASHBOARD_USER/);
    const guarded = startJtm(['manager', '--metrics-port', '0'], {
      ...env,
      JTM_DASHBOARD_USER: 'ops',
      JTM_DASHBOARD_PASSWORD: 's3cret',
    });
    try {
      const url = await waitFor(
        () => /"url":"(http:\/\/[^"]+\/metrics)"[^\n]*metrics listening/.exec(guarded.output())?.[1],
        'guarded metrics listening',
        30_000,
      );
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: auth('ops', 'wrong') })).status).toBe(401);
      expect(
        value(await scrape(url, auth('ops', 's3cret')), 'jtm_tasks_submitted_total', { pool: 'm2' }),
      ).toBe(1);
    } finally {
      expect(await guarded.stop()).toBe(0);
    }
  });
});
