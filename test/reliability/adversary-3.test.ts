import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { runJtm, startJtm, statusOf, taskIds, waitWorkers, type BackgroundProcess } from '../helpers/cli.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';

/*
 * Defects the adversarial tester found on main cfe1168 (brief: adversary-report.md D3, D6, D9), checked on the
 * built CLI as a user meets them: one line on stderr naming what is wrong, exit 1, nothing on stdout.
 */
describe('adversary 3: refused settings', () => {
  const env = testEnv();
  const dir = tempDir('jtm-adv3-');
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  type Case = [name: string, args: string[], expected: string, env?: Record<string, string>];
  const cases: Case[] = [
    // D3: a timer of more than 2^31−1 ms fired after 1 ms (a worker with -hb 30d flooded Redis)
    ['worker -hb 30d', ['worker', '-p', 'x', '-hb', '30d'], 'invalid -hb "30d": at most 2147483647 ms'],
    ['worker -hb 999999999 (seconds)', ['worker', '-p', 'x', '-hb', '999999999'], 'invalid -hb'],
    [
      'JTM_STALLED_INTERVAL=30d',
      ['worker', '-p', 'x'],
      'invalid JTM_STALLED_INTERVAL "30d"',
      { JTM_STALLED_INTERVAL: '30d' },
    ],
    [
      'JTM_SAMPLE_INTERVAL=30d',
      ['worker', '-p', 'x'],
      'invalid JTM_SAMPLE_INTERVAL "30d"',
      { JTM_SAMPLE_INTERVAL: '30d' },
    ],
    [
      'JTM_CONNECT_TIMEOUT=30d',
      ['status', '-tid', '1'],
      'invalid JTM_CONNECT_TIMEOUT "30d"',
      { JTM_CONNECT_TIMEOUT: '30d' },
    ],
    ['manager --sweep-interval 30d', ['manager', '--sweep-interval', '30d'], 'invalid --sweep-interval'],
    // D6: a typo or a duplicate in a --config file was silently ignored (the default prefix was used)
    [
      'config file with a typo',
      ['--config', file('typo.env', 'JTM_PREFX={advt}\n'), 'status', '-tid', '1'],
      'typo.env:1: unknown key JTM_PREFX (did you mean JTM_PREFIX?',
    ],
    [
      'config file with a key twice',
      // (isalive answers unknown, exit 0, for a file at fault: fail-fast.test.ts; adversary 13 E6.)
      ['status', '-tid', '1', '--config', file('dup.env', 'JTM_PREFIX={a}\nJTM_PREFIX={b}\n')],
      'dup.env:2: JTM_PREFIX given twice',
    ],
    // D9: the exposure refusal lost the first ':' of an IPv6 address, '' was an exposure, the manager's
    // metrics refusal said "dashboard", and a blank password counted as set
    ['dashboard --host ::', ['dashboard', '--host', '::'], 'refusing to serve the dashboard on :: without'],
    ['dashboard --host [::]', ['dashboard', '--host', '[::]'], 'the dashboard on [::] without'],
    ['dashboard --host ""', ['dashboard', '--host', ''], 'invalid address "" for the dashboard'],
    [
      'manager --metrics-host 0.0.0.0',
      ['manager', '--metrics-port', '0', '--metrics-host', '0.0.0.0'],
      'refusing to serve the metrics endpoint on 0.0.0.0',
    ],
    [
      'blank JTM_DASHBOARD_PASSWORD',
      ['dashboard', '--host', '0.0.0.0'],
      'JTM_DASHBOARD_PASSWORD is blank',
      { JTM_DASHBOARD_USER: 'u', JTM_DASHBOARD_PASSWORD: ' ' },
    ],
  ];

  it.concurrent.each(cases)('%s → one line, exit 1', async (_n, args, expected, extra) => {
    const r = await runJtm(args, { ...env, ...(extra ?? {}) }, { timeoutMs: 20_000 });
    expect(r.stdout).toBe('');
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^jtm [a-z-]*: \S/);
    expect(lines[0]).toContain(expected);
    expect(r.stderr).not.toContain('TimeoutOverflowWarning');
  });
});

describe('adversary 3: status --json names the stderr file; dashboard answers are not sniffed', () => {
  const env = testEnv();
  let worker: BackgroundProcess | undefined;
  let dashboard: BackgroundProcess | undefined;
  afterAll(async () => {
    await worker?.stop();
    await dashboard?.stop();
  });

  it('status --json has stderr_file (default and task-file stdout without stderr) beside stdout_file', async () => {
    const dir = tempDir('jtm-adv3-err-');
    worker = startJtm(['worker', '-p', 'errp', '--slots', '2'], env);
    await waitWorkers(env, 'errp', 1);
    const plain = taskIds((await runJtm(['submit', '-cmd', 'echo oops >&2', '-p', 'errp'], env)).stdout)[0]!;
    const tf = join(dir, 't.json');
    writeFileSync(
      tf,
      JSON.stringify({ command: 'echo ouch >&2', stdout: join(dir, 'o.txt'), pool: { name: 'errp' } }),
    );
    const named = taskIds((await runJtm(['submit', '-f', tf], env)).stdout)[0]!;
    for (const [id, text] of [
      [plain, 'oops'],
      [named, 'ouch'],
    ] as const) {
      await waitFor(async () => (await statusOf(env, id)) === 'success', `task ${id} success`);
      const rec = JSON.parse((await runJtm(['status', '-tid', String(id), '--json'], env)).stdout) as {
        stdout_file: string;
        stderr_file: string;
      };
      expect(rec.stdout_file).toBeTruthy();
      expect(rec.stderr_file).toBe(join(env['JTM_LOG_DIR']!, 'tasks', `${id}.err`));
      expect(readFileSync(rec.stderr_file, 'utf8').trim()).toBe(text);
    }
  });

  it('every dashboard answer carries nosniff (a JSON error repeats user input) and forbids framing (clickjacking a kill)', async () => {
    dashboard = startJtm(['dashboard', '--port', '0'], env);
    const url = await waitFor(
      () => /dashboard listening on (http:\/\/\S+)/.exec(dashboard!.output())?.[1],
      'dashboard listening',
      30_000,
    );
    for (const path of [
      'pool?name=%3Cscript%3E',
      'api/tasks/abc',
      'workers',
      'nope',
      'task/live?id=1',
      'queues/',
      'metrics',
    ]) {
      const res = await fetch(new URL(path, url));
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      // Express's own 404 page sets its stricter `default-src 'none'` (nothing on it to click).
      if (res.status !== 404) {
        expect(res.headers.get('content-security-policy'), path).toMatch(/(^|; )frame-ancestors 'none'(;|$)/);
      }
    }
  });
});
