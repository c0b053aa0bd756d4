import { Agent, request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { jobIdOf } from '../../src/tasks/job-data.js';
import { SHOTS, useChromium } from '../helpers/browser.js';
import { runJtm, startJtm, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { useTestContext } from '../helpers/context.js';
import { startDashboard } from '../helpers/dashboard.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { submitOne } from '../helpers/submit.js';
import { describeIf, findChromium } from '../helpers/requirements.js';

/** An IPv4 address of this host other than loopback (undefined when it has none). */
const otherAddress = (): string | undefined =>
  Object.values(networkInterfaces())
    .flat()
    .find(i => i && i.family === 'IPv4' && !i.internal)?.address;

const auth = (user: string, password: string): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

describe('dashboard access rules', () => {
  const env = testEnv();
  const ctx = useTestContext(env);

  it('the manager serves it too (jtm manager --dashboard), with the same exposure rule', async () => {
    const proc = startJtm(['manager', '--dashboard', '--dashboard-port', '0'], env);
    try {
      const url = await waitFor(
        () => /"url":"(http:\/\/[^"]+)"[^\n]*dashboard listening/.exec(proc.output())?.[1],
        'manager dashboard listening',
        30_000,
      );
      expect((await fetch(`${url}workers`)).status).toBe(200);
      expect((await runJtm(['check-manager'], env)).code).toBe(0);
    } finally {
      expect(await proc.stop()).toBe(0);
    }
    const exposed = startJtm(
      ['manager', '--dashboard', '--dashboard-host', '0.0.0.0', '--dashboard-port', '0'],
      env,
    );
    expect(await exposed.exited).toBe(1);
    expect(exposed.output()).toMatch(/credentials|JTM_DASHBOARD_USER/);
  });

  it('loopback without credentials: served, read-only, queues follow the pool registry', async () => {
    const id = await submitOne(env, ['-cmd', 'true', '-p', 'ro-pool']);
    const { proc, url } = await startDashboard(env);
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect((await fetch(`${url}workers`)).status).toBe(200);
      const queues = (await (await fetch(`${url}queues/api/queues`)).json()) as {
        queues: { name: string; readOnlyMode: boolean }[];
      };
      expect(queues.queues.map(q => [q.name, q.readOnlyMode])).toEqual([['ro-pool', true]]);
      const kill = await fetch(`${url}api/tasks/${id}/kill`, { method: 'POST' });
      expect(kill.status).toBe(403);
      expect(await ctx().tasks.status(id)).toBe(2);
      expect((await fetch(`${url}api/tasks/999999`)).status).toBe(404);
      // Adversary 14 F7, F5: every page's request for an icon was a 404; a 60 KB command filled 7,500 px of the
      // task page; the sample columns had no units, and perc_mem_used (the node's) read as the task's.
      const icon = await fetch(`${url}favicon.ico`);
      expect([icon.status, icon.headers.get('content-type')]).toEqual([200, 'image/svg+xml; charset=utf-8']);
      const long = await submitOne(env, ['-cmd', `echo ${'A'.repeat(5000)}`, '-p', 'ro-pool']);
      const html = await (await fetch(`${url}task?id=${long}`)).text();
      expect(html).toMatch(/<link rel="icon" href="data:image\/svg\+xml,/);
      expect(html).toContain('<details><summary>4,005 more characters</summary>');
      // Nothing lost: the start (`echo ` and 995 characters) and the folded rest.
      expect(html).toContain(`<code>echo ${'A'.repeat(995)}</code>`);
      expect(html).toContain(`<code>${'A'.repeat(4005)}</code>`);
      await ctx().tasks.requestKill(long);
      // A pool that disappears from the registry (remove-pool, idle expiry) leaves the board.
      await ctx().redis.srem(ctx().keys.pools, 'ro-pool');
      await waitFor(
        async () => ((await (await fetch(`${url}api/pools`)).json()) as string[]).length === 0,
        'queue removed',
      );
    } finally {
      await proc.stop();
    }
  });

  it('the live output stream keeps a character split between two writes whole (adversary 9 J11: two U+FFFD)', async () => {
    const worker = startJtm(['worker', '-p', 'utf8-live'], env);
    const { proc, url } = await startDashboard(env);
    try {
      await waitWorkers(env, 'utf8-live');
      // é is C3 A9: each half in a write of its own, far enough apart to be two entries of the stream.
      const id = await submitOne(env, [
        '-cmd',
        "for i in 1 2 3; do printf '\\303'; sleep 0.4; printf '\\251\\n'; sleep 0.1; done",
        '-p',
        'utf8-live',
      ]);
      await waitFor(async () => (await ctx().tasks.status(id)) === 3 || undefined, 'the task to run');
      const body = await (await fetch(`${url}api/tasks/${id}/output/stream`)).text();
      const text = body
        .split('\n')
        .filter(l => l.startsWith('data: ') && l !== 'data: {}')
        .map(l => JSON.parse(l.slice(6)) as string)
        .join('');
      expect(text).toBe('é\né\né\n');
    } finally {
      await proc.stop();
      await worker.stop();
    }
  });

  it('the live output stream follows an output that started over (its file truncated) into its kept tail', async () => {
    // No worker: the run is written as a worker writes it. The viewer has sent "old\n" (offsets 0–4) when the
    // run ends with a kept tail of its output started over (ep 1, offset 0 again): it was not sent before, its
    // offsets taken for the old output's.
    const id = await submitOne(env, ['-cmd', 'true', '-p', 'restart-live']);
    const c = ctx();
    await c.redis.hset(c.keys.task(id), 'status', '3', 'run_token', 'r1');
    await c.redis.xadd(c.keys.taskOutput(id), '*', 'data', 'old\n', 'off', '0');
    const { proc, url } = await startDashboard(env);
    try {
      const response = await fetch(`${url}api/tasks/${id}/output/stream`);
      const reader = response.body!.getReader();
      let body = '';
      const decoder = new TextDecoder();
      while (!body.includes('old')) body += decoder.decode((await reader.read()).value);
      await c.redis.del(c.keys.taskOutput(id));
      await c.redis.hset(c.keys.taskOutputKept(id), 'data', 'new\n', 'off', '0', 'run', 'r1', 'ep', '1');
      await c.redis.hset(c.keys.task(id), 'status', '4');
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        body += decoder.decode(value);
      }
      const text = body
        .split('\n')
        .filter(l => l.startsWith('data: ') && l !== 'data: {}')
        .map(l => JSON.parse(l.slice(6)) as string)
        .join('');
      expect(text).toBe('old\nnew\n');
    } finally {
      await proc.stop();
    }
  });

  it('beyond loopback without credentials: refuses to start', async () => {
    const r = await runJtm(['dashboard', '--host', '0.0.0.0', '--port', '0'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to serve the dashboard on 0\.0\.0\.0 without credentials/);
  });

  it('with credentials: 401 on every route without them, 200 with them; actions only when allowed', async () => {
    const withCreds = { ...env, JTM_DASHBOARD_USER: 'ops', JTM_DASHBOARD_PASSWORD: 'pa:ss word' };
    const id = await submitOne(env, ['-cmd', 'sleep 60', '-p', 'auth-pool']);
    const { proc, url } = await startDashboard(withCreds, ['--allow-actions']);
    try {
      for (const path of ['', 'queues', 'queues/api/queues', 'workers', `task?id=${id}`, `api/tasks/${id}`]) {
        expect((await fetch(`${url}${path}`, { redirect: 'manual' })).status, path).toBe(401);
        expect((await fetch(`${url}${path}`, { headers: auth('ops', 'pa:ss word') })).status, path).toBe(200);
      }
      // Wrong credentials: 401 after a delay, one at a time per client (the others 429), logged once a minute
      // per client; the limit itself is tested below.
      const t0 = Date.now();
      const wrong = await Promise.all(
        [1, 2, 3].map(() => fetch(`${url}workers`, { headers: auth('ops', 'wrong') })),
      );
      expect(wrong.map(r => r.status).sort()).toEqual([401, 429, 429]);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      await waitFor(() => /wrong user or password/.test(proc.output()), 'the failed login logged');
      expect(proc.output().match(/wrong user or password/g)).toHaveLength(1);
      const kill = await fetch(`${url}api/tasks/${id}/kill`, {
        method: 'POST',
        headers: auth('ops', 'pa:ss word'),
      });
      expect(kill.status).toBe(200);
      expect(await kill.json()).toMatchObject({ task_id: id, status: 'terminated', action: 'removed' });
      // JTM's error codes map to HTTP: unknown task 404, bad input 400 — never 500.
      const post = (path: string) =>
        fetch(`${url}${path}`, { method: 'POST', headers: auth('ops', 'pa:ss word') });
      const unknown = await post('api/tasks/999999/kill');
      expect([unknown.status, await unknown.json()]).toEqual([
        404,
        { error: 'TASK_NOT_FOUND', message: 'no task with id 999999' },
      ]);
      expect((await post('api/tasks/abc/kill')).status).toBe(400);
      expect((await post('task/999999/kill')).status).toBe(404);
      const get = (path: string) => fetch(`${url}${path}`, { headers: auth('ops', 'pa:ss word') });
      expect((await get('api/tasks/abc')).status).toBe(400);
      expect((await get('api/tasks/999999')).status).toBe(404);
      expect((await get('task?id=-1')).status).toBe(400);
      expect((await get('task?id=999999')).status).toBe(404);
      // Every not-found answer of the API says what was not found; 0 is an invalid id, as in the CLI; a page
      // asked with bad input answers with a page, its text escaped (adversary 9, J5).
      for (const path of ['api/tasks/999999', 'api/tasks/999999/samples', 'api/tasks/999999/output/stream']) {
        const r = await get(path);
        expect([path, r.status, await r.json()]).toEqual([
          path,
          404,
          { error: 'TASK_NOT_FOUND', message: 'no task with id 999999' },
        ]);
      }
      const zero = await get('api/tasks/0');
      expect([zero.status, await zero.json()]).toEqual([
        400,
        { error: 'INVALID_INPUT', message: 'invalid task id "0": expected a positive integer' },
      ]);
      for (const path of ['task?id=%3Cscript%3E', 'task/live?id=%3Cb%3E', 'task/live?id=999999']) {
        const r = await get(path);
        const body = await r.text();
        expect([path, r.headers.get('content-type')]).toEqual([path, 'text/html; charset=utf-8']);
        expect(body).not.toMatch(/<script>|<b>/);
      }
      // Writes from another site's page (a form or a fetch the browser sends credentials with) are refused:
      // one such form killed the task (adversarial test 3). The dashboard's own pages, and curl, still may.
      const other = await submitOne(env, ['-cmd', 'sleep 60', '-p', 'auth-pool']);
      for (const headers of <Record<string, string>[]>[
        { Origin: 'http://evil.example' },
        { Origin: 'null' },
        { 'Sec-Fetch-Site': 'cross-site' },
        { 'Sec-Fetch-Site': 'same-site' },
        // Either header naming another page refuses (adversary 35 F7: this pair passed).
        { Origin: new URL(url).origin, 'Sec-Fetch-Site': 'cross-site' },
      ]) {
        const r = await fetch(`${url}task/${other}/kill`, {
          method: 'POST',
          headers: {
            ...auth('ops', 'pa:ss word'),
            ...headers,
            'Content-Type': 'application/x-www-form-urlencoded',
          },
          body: 'x=1',
          redirect: 'manual',
        });
        expect([JSON.stringify(headers), r.status]).toEqual([JSON.stringify(headers), 403]);
      }
      expect((await runJtm(['status', '-tid', String(other)], env)).stdout.trim()).toBe('pending');
      const own = await fetch(`${url}task/${other}/kill`, {
        method: 'POST',
        headers: {
          ...auth('ops', 'pa:ss word'),
          Origin: new URL(url).origin,
          'Sec-Fetch-Site': 'same-origin',
        },
        redirect: 'manual',
      });
      expect(own.status).toBe(303);
      // The right credentials with junk after their base64 padding are not the right credentials (adversary 41 F4).
      const junk = await fetch(`${url}workers`, {
        headers: { authorization: `${auth('ops', 'pa:ss word').authorization}AAAA` },
      });
      expect(junk.status).toBe(401);
    } finally {
      await proc.stop();
    }
  });

  it('wrong credentials are limited per client: a few 401 a second, the rest 429; right ones pass (adversary 21 F2)', async () => {
    // Adversary 21 F2: 400 keep-alive connections of one client made ~1,250 guesses a second (each waited its
    // 300 ms in parallel), and 6,489 failures gave one warning line without a count.
    const withCreds = {
      ...env,
      JTM_DASHBOARD_USER: 'ops',
      JTM_DASHBOARD_PASSWORD: 's3:cret',
      JTM_LOG_REPEAT_INTERVAL: '2s',
    };
    // Every loopback address is one client (adversary 35 F3): the user who is not held comes from one of the
    // host's other addresses, so the dashboard listens on all of them.
    const { proc, url } = await startDashboard(withCreds, ['--host', '0.0.0.0']);
    const { port } = new URL(url);
    const userAddress = otherAddress();
    const get = (
      headers: Record<string, string>,
      localAddress?: string,
      agent?: Agent,
      host = localAddress ?? '127.0.0.1',
    ) =>
      new Promise<{ status: number; retryAfter?: string }>((resolve, reject) => {
        const req = request({ host, port, path: '/api/workers', headers, localAddress, agent }, res => {
          res.resume();
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    const guesser = new Agent({ keepAlive: true, maxSockets: 100 });
    try {
      const statuses = new Map<number, number>();
      const started = Date.now();
      let guess = 0;
      const loop = async (): Promise<void> => {
        while (Date.now() - started < 2500) {
          const { status } = await get(auth('ops', `guess${guess++}`), '127.0.0.2', guesser);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      };
      const guessing = Promise.all(Array.from({ length: 100 }, loop));
      // Meanwhile the user, from another address (not loopback), is served at once every time.
      const user: { status: number; ms: number }[] = [];
      while (userAddress && Date.now() - started < 2000) {
        const t = Date.now();
        user.push({ status: (await get(auth('ops', 's3:cret'), userAddress)).status, ms: Date.now() - t });
        await new Promise(r => setTimeout(r, 100));
      }
      await guessing;
      const seconds = (Date.now() - started) / 1000;
      const unauthorized = statuses.get(401) ?? 0;
      const refused = statuses.get(429) ?? 0;
      expect([...statuses.keys()].sort()).toEqual([401, 429]);
      // One wrong answer in flight per client, 300 ms each: about 3 a second (not hundreds).
      expect(unauthorized).toBeGreaterThanOrEqual(2);
      expect(unauthorized).toBeLessThanOrEqual(Math.ceil(seconds / 0.3) + 1);
      expect(refused).toBeGreaterThan(unauthorized);
      if (userAddress) {
        expect(user.length).toBeGreaterThanOrEqual(5);
        expect(user.every(u => u.status === 200)).toBe(true);
        expect(Math.max(...user.map(u => u.ms))).toBeLessThan(1500);
      }
      // The warning lines of the guesser (the first at once, then at most one per JTM_LOG_REPEAT_INTERVAL)
      // add up to every wrong try and every refusal.
      const sums = () => {
        const lines = proc
          .output()
          .split('\n')
          .filter(l => l.includes('"client":"loopback"'))
          .map(l => JSON.parse(l) as { msg: string; failures: number; refused: number });
        return {
          lines: lines.length,
          msg: [...new Set(lines.map(l => l.msg))],
          failures: lines.reduce((n, l) => n + l.failures, 0),
          refused: lines.reduce((n, l) => n + l.refused, 0),
        };
      };
      await waitFor(
        () => sums().failures === unauthorized && sums().refused === refused,
        'the counts logged',
        15_000,
      );
      expect(sums().msg).toEqual(['wrong user or password']);
      expect(sums().lines).toBeLessThanOrEqual(Math.ceil(seconds / 2) + 2);
      // While a wrong answer is pending, the same client's right credentials get 429 too (checking them would
      // make the 429 itself say "wrong"); once it is answered they pass.
      const pending = get(auth('ops', 'wrong'), '127.0.0.3');
      await new Promise(r => setTimeout(r, 50));
      expect(await get(auth('ops', 's3:cret'), '127.0.0.3')).toEqual({ status: 429, retryAfter: '1' });
      expect((await pending).status).toBe(401);
      expect((await get(auth('ops', 's3:cret'), '127.0.0.3')).status).toBe(200);
    } finally {
      guesser.destroy();
      await proc.stop();
    }
  });

  it('every loopback address is one client: 30 wrong guesses from 30 addresses of 127.0.0.0/8 get 429s (adversary 35 F3)', async () => {
    // Adversary 35 F3: a local user sent 600 guesses from 600 addresses of 127.0.0.0/8, every one checked (401).
    const withCreds = { ...env, JTM_DASHBOARD_USER: 'ops', JTM_DASHBOARD_PASSWORD: 's3:cret' };
    const { proc, url } = await startDashboard(withCreds);
    try {
      const { port } = new URL(url);
      const get = (localAddress: string, password: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port, path: '/api/workers', headers: auth('ops', password), localAddress },
            res => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end();
        });
      const statuses = await Promise.all(
        Array.from({ length: 30 }, (_, i) => get(`127.${i + 1}.${i * 7}.${i + 2}`, `wrong${i}`)),
      );
      const count = (code: number) => statuses.filter(s => s === code).length;
      // One wrong answer in flight for all of loopback: the rest are refused unchecked.
      expect(count(401) + count(429)).toBe(30);
      expect(count(401)).toBeLessThanOrEqual(2);
      expect(count(429)).toBeGreaterThanOrEqual(28);
      // Logged under one client.
      await waitFor(() => proc.output().includes('"client":"loopback"'), 'the warning line', 10_000);
      // Once the pending answer is given, right credentials pass from any loopback address.
      await waitFor(
        async () => (await get('127.9.9.9', 's3:cret')) === 200 || undefined,
        'right credentials accepted again',
        5000,
        100,
      );
    } finally {
      await proc.stop();
    }
  });

  it('on loopback without credentials, answers only under loopback names (DNS rebinding)', async () => {
    const { proc, url } = await startDashboard(env);
    try {
      const { port } = new URL(url);
      const statusUnder = (host: string): Promise<number | undefined> =>
        new Promise((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port, path: '/api/workers', headers: { Host: host } },
            res => {
              res.resume();
              resolve(res.statusCode);
            },
          );
          req.on('error', reject);
          req.end();
        });
      expect(await statusUnder('evil.example')).toBe(421);
      expect(await statusUnder(`rebind.evil.example:${port}`)).toBe(421);
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST.', `[::1]:${port}`])
        expect([host, await statusUnder(host)]).toEqual([host, 200]);
    } finally {
      await proc.stop();
    }
  });
});

const chromiumBinary = findChromium();

describeIf(chromiumBinary, 'dashboard in a real browser', () => {
  const env = testEnv();
  const browser = useChromium(chromiumBinary.path);
  let worker: BackgroundProcess;
  let dashboard: { proc: BackgroundProcess; url: string };
  let failedId: number;
  let runningId: number;

  beforeAll(async () => {
    worker = startJtm(['worker', '-p', 'browser-pool', '--slots', '2'], env);
    await waitWorkers(env, 'browser-pool');
    failedId = await submitOne(env, ['-cmd', 'echo broken >&2; exit 7', '-p', 'browser-pool']);
    runningId = await submitOne(env, ['-cmd', 'sleep 120', '-p', 'browser-pool']);
    await submitOne(env, ['-cmd', 'true', '-p', 'waiting-pool']);
    await waitFor(
      async () => (await runJtm(['status', '-tid', String(failedId)], env)).stdout.trim() === 'failed',
      'failed task',
    );
    await waitFor(
      async () => (await runJtm(['status', '-tid', String(runningId)], env)).stdout.trim() === 'running',
      'running task',
    );
    dashboard = await startDashboard(env);
  });
  afterAll(async () => {
    await dashboard?.proc.stop();
    await worker?.stop('SIGKILL');
  });

  it('renders the pool queues, a failed task and the live workers', async () => {
    const page = await browser().newPage({ viewport: { width: 1400, height: 900 } });
    // No page makes a request beyond the dashboard: bull-board's asked Google for its fonts, telling it the
    // user's address and the dashboard's URL, and failing on an offline login node (adversary 9, J5).
    const elsewhere: string[] = [];
    // Chromium reports a request its policy blocked as a request that failed so: only those may go elsewhere.
    const external = (url: string): boolean => !url.startsWith(dashboard.url) && !url.startsWith('data:');
    page.on('requestfinished', r => {
      if (external(r.url())) elsewhere.push(r.url());
    });
    page.on('requestfailed', r => {
      if (external(r.url()) && !/^(csp|net::ERR_BLOCKED_BY_CSP)$/.test(r.failure()?.errorText ?? ''))
        elsewhere.push(`${r.url()} (${r.failure()?.errorText})`);
    });
    // Nothing the pages need is refused by their Content-Security-Policy (the fonts' request is, on purpose).
    const refused: string[] = [];
    page.on('console', m => {
      if (/Content Security Policy/.test(m.text()) && !/fonts\.googleapis\.com/.test(m.text()))
        refused.push(m.text());
    });
    // No request of the pages fails (adversary 14 F7: each page's /favicon.ico was a 404 in the console).
    const failed: string[] = [];
    page.on('response', r => {
      if (r.url().startsWith(dashboard.url) && r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(`${dashboard.url}queues`);
    await page.getByText('browser-pool').first().waitFor({ timeout: 30_000 });
    await page.getByText('waiting-pool').first().waitFor({ timeout: 30_000 });
    await page.getByText('Loading').first().waitFor({ state: 'detached', timeout: 30_000 });
    await page.screenshot({ path: join(SHOTS, 'dashboard-queues.png'), fullPage: true });
    // The failed task's job, among its pool queue's failed jobs (the job carries the task id).
    await page.goto(`${dashboard.url}queues/queue/browser-pool?status=failed`);
    await page.getByText(jobIdOf(failedId)).first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: join(SHOTS, 'dashboard-pool-queue.png'), fullPage: true });

    await page.goto(`${dashboard.url}task?id=${failedId}`);
    expect(await page.locator('.status-failed').first().textContent()).toBe('failed');
    expect(await page.locator('body').textContent()).toContain('exit code 7');
    await page.screenshot({ path: join(SHOTS, 'dashboard-failed-task.png'), fullPage: true });

    await page.goto(`${dashboard.url}workers`);
    const row = page.locator('tr', { hasText: 'browser-pool' });
    await row.first().waitFor({ timeout: 10_000 });
    expect(await row.first().textContent()).toContain(String(runningId));
    await page.getByRole('link', { name: String(runningId) }).click();
    await page.locator('.status-running').first().waitFor({ timeout: 10_000 });
    // The samples' units, and whose memory perc_mem_used is (adversary 14 F5).
    expect(await page.locator('th', { hasText: 'perc_mem_used' }).first().textContent()).toBe(
      "perc_mem_used (% of the node's memory in use, all processes)",
    );
    await page.goto(`${dashboard.url}workers`);
    await page.screenshot({ path: join(SHOTS, 'dashboard-workers.png'), fullPage: true });
    await page.close();
    expect(elsewhere).toEqual([]);
    expect(refused).toEqual([]);
    expect(failed).toEqual([]);
  });
});
