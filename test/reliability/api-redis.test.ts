// The programmatic API (`connect()` of src/index.ts) when Redis stops answering, goes away, refuses writes, or
// the program closes the client under its own calls (adversary 22 H1, M2, M3, M4): every call ends within its
// documented bound, with a JtmError of a stable code, as the CLI's commands do.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';

import {
  ClientClosedError,
  connect,
  InvalidInputError,
  JtmError,
  RedisRefusedError,
  RedisUnavailableError,
  type JtmClient,
} from '../../src/index.js';
import { tempDir, testEnv } from '../helpers/env.js';
import { usePrivateRedis } from '../helpers/local-redis.js';
import { runProcess } from '../../scripts/lib/run-process.mjs';
import { ROOT } from '../helpers/cli.js';

const startRedis = usePrivateRedis();
const clients: JtmClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map(c => c.close()));
});

async function client(env: Record<string, string>): Promise<JtmClient> {
  const jtm = await connect({ env });
  clients.push(jtm);
  return jtm;
}

/** How a call settled and when (ms after `t0`): its value, or its error's class and code. */
async function outcome(
  p: Promise<unknown>,
  t0: number,
): Promise<{ ms: number; value?: unknown; error?: string }> {
  try {
    const value = await p;
    return { ms: Date.now() - t0, value };
  } catch (err) {
    const e = err as Error & { code?: string };
    expect(err).toBeInstanceOf(JtmError);
    return { ms: Date.now() - t0, error: `${e.name} ${e.code}` };
  }
}

describe('API: Redis stops answering after connect() (SIGSTOP)', () => {
  it('every call rejects with REDIS_UNAVAILABLE within about JTM_CONNECT_TIMEOUT, isAlive answers unknown; the next call after SIGCONT works', async () => {
    const redis = await startRedis();
    const env = testEnv({
      REDIS_URL: redis.url,
      JTM_CONNECT_TIMEOUT: '1s',
      JTM_ISALIVE_RETRY: '1s',
      JTM_KILL_RETRY: '1s',
      JTM_SUBMIT_RETRY: '1s',
    });
    const jtm = await client(env);
    const [id] = await jtm.submit({ command: 'true' }, { pool: 'stopped' });
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      // Before: each of these waited for as long as Redis was stopped (60 s and more).
      const results = await Promise.all([
        outcome(jtm.status(id!), t0),
        outcome(jtm.details(id!), t0),
        outcome(jtm.isAlive(id!), t0),
        outcome(jtm.submit({ command: 'true' }, { pool: 'stopped' }), t0),
        outcome(jtm.kill(id!, { waitMs: 100 }), t0),
        outcome(jtm.logs(id!), t0),
        outcome(jtm.resourceLog(id!), t0),
        outcome(jtm.pools(), t0),
        outcome(jtm.removePool('stopped'), t0),
      ]);
      const unavailable = { error: 'RedisUnavailableError REDIS_UNAVAILABLE' };
      expect(results.map(({ ms: _, ...r }) => r)).toEqual([
        unavailable,
        unavailable,
        { value: 'unknown' },
        unavailable,
        // Sent on the open connection: a stopped Redis applies it when it resumes (adversary 26 F4).
        { error: 'KillUnsettledError KILL_UNSETTLED' },
        unavailable,
        unavailable,
        unavailable,
        unavailable,
      ]);
      // 1 s of silence, then the retries' last tries; twice the timeout at most on a starved machine.
      for (const r of results) expect(r.ms).toBeLessThan(6000);
      // One call alone, to its error's words.
      await expect(jtm.status(id!)).rejects.toThrow(/cannot reach Redis at .*no answer within 1000 ms/);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    // The client connects again by itself. The kill sent before the stop (KILL_UNSETTLED) may be applied as Redis
    // resumes, before or after this call: either answer is right (a full run read `terminated` once).
    expect(await jtm.status(id!)).toMatchObject({
      task_id: id,
      status: expect.stringMatching(/^(pending|terminated)$/) as unknown,
    });
  }, 60_000);
});

describe('API: Redis restarted under kill and submit', () => {
  it('kill and submit try again for JTM_KILL_RETRY / JTM_SUBMIT_RETRY, as the commands do', async () => {
    let redis = await startRedis();
    const env = testEnv({ REDIS_URL: redis.url, JTM_KILL_RETRY: '10s', JTM_SUBMIT_RETRY: '10s' });
    const jtm = await client(env);
    const [id] = await jtm.submit({ command: 'true' }, { pool: 'restart' });
    await redis.stop('SIGKILL');
    const t0 = Date.now();
    const kill = outcome(jtm.kill(id!, { waitMs: 100 }), t0);
    const submit = outcome(jtm.submit({ command: 'true' }, { pool: 'restart' }), t0);
    await new Promise(r => setTimeout(r, 1500));
    // Empty (no persistence): the task is gone, which only a kill that reached it can say.
    redis = await startRedis({ port: redis.port });
    // Before: kill rejected at once with a plain Error, submit with REDIS_UNAVAILABLE.
    expect(await kill).toMatchObject({ error: 'TaskNotFoundError TASK_NOT_FOUND' });
    expect(await submit).toMatchObject({ value: [1] });
    expect((await kill).ms).toBeGreaterThan(1400);
  }, 60_000);

  it('without a restart, the calls reject with REDIS_UNAVAILABLE, never a plain ioredis Error', async () => {
    const redis = await startRedis();
    const jtm = await client(testEnv({ REDIS_URL: redis.url, JTM_KILL_RETRY: '0s', JTM_SUBMIT_RETRY: '0s' }));
    const [id] = await jtm.submit({ command: 'true' }, { pool: 'gone' });
    await redis.stop('SIGKILL');
    const t0 = Date.now();
    const results = await Promise.all([
      outcome(jtm.status(id!), t0),
      outcome(jtm.kill(id!), t0),
      outcome(jtm.logs(id!), t0),
      outcome(
        jtm.followLogs(id!, () => {}),
        t0,
      ),
      outcome(jtm.pools(), t0),
      outcome(jtm.removePool('gone'), t0),
      outcome(jtm.resourceLog(id!), t0),
      outcome(jtm.submit({ command: 'true' }, { pool: 'gone' }), t0),
    ]);
    // The kill's request may be written before the client hears that the socket closed: sent, never answered, it
    // may have been applied (a Redis killed after reading it) — said so (KILL_UNSETTLED), also not a plain Error.
    // Seen in a full run at load ≈ 4, 1 of 1,069 rows.
    const [killed] = results.splice(1, 1);
    expect(['RedisUnavailableError REDIS_UNAVAILABLE', 'KillUnsettledError KILL_UNSETTLED']).toContain(
      killed!.error,
    );
    for (const r of results) expect(r.error).toBe('RedisUnavailableError REDIS_UNAVAILABLE');
  }, 60_000);
});

describe('API: Redis refuses writes (a read-only replica)', () => {
  it('kill, submit and removePool reject with REDIS_REFUSED or SUBMIT_INCOMPLETE, not a raw ReplyError', async () => {
    const redis = await startRedis();
    const jtm = await client(testEnv({ REDIS_URL: redis.url }));
    const [id] = await jtm.submit({ command: 'true' }, { pool: 'ro' });
    // A replica of a master that does not exist: it keeps its data and refuses every write (READONLY).
    const admin = new Redis(redis.url);
    await admin.replicaof('127.0.0.1', 1);
    await admin.quit();
    const kill = jtm.kill(id!);
    await expect(kill).rejects.toBeInstanceOf(RedisRefusedError);
    await expect(kill).rejects.toMatchObject({ code: 'REDIS_REFUSED' });
    await expect(jtm.removePool('ro', { force: true })).rejects.toMatchObject({ code: 'REDIS_REFUSED' });
    await expect(jtm.submit({ command: 'true' }, { pool: 'ro' })).rejects.toMatchObject({
      code: expect.stringMatching(/^(REDIS_REFUSED|SUBMIT_INCOMPLETE)$/),
    });
    expect(await jtm.status(id!)).toMatchObject({ status: 'pending' });
  }, 60_000);
});

describe('API: close() with calls in flight', () => {
  it('lets a submit in flight finish, stops a follow with CLIENT_CLOSED, refuses later calls, prints nothing', async () => {
    const redis = await startRedis();
    const env = testEnv({ REDIS_URL: redis.url });
    const jtm = await connect({ env });
    const [sleeper] = await jtm.submit({ command: 'sleep 300' }, { pool: 'close' });
    const submit = jtm.submit(
      Array.from({ length: 20_000 }, (_, i) => ({ command: `echo ${i}` })),
      { pool: 'close' },
    );
    const follow = jtm
      .followLogs(sleeper!, () => {})
      .then(
        () => 'ended',
        (err: unknown) => err,
      );
    await new Promise(r => setTimeout(r, 100));
    const closed = jtm.close();
    // Before: RedisUnavailableError "cannot reach Redis … (Stream isn't writeable …)" and thousands of ids used
    // by tasks left queued.
    const ids = await submit;
    expect(ids).toHaveLength(20_000);
    expect(await follow).toBeInstanceOf(ClientClosedError);
    await closed;
    await expect(jtm.status(sleeper!)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
    await expect(jtm.submit({ command: 'true' }, { pool: 'close' })).rejects.toBeInstanceOf(
      ClientClosedError,
    );
    await jtm.close();
    // Every task of the submit is there, committed.
    const check = await client(env);
    expect(await check.status(ids[19_999]!)).toMatchObject({ status: 'pending' });
  }, 60_000);

  it('a program closing its client under a bulk submit prints nothing on its own', async () => {
    const redis = await startRedis();
    const script = `
      import { connect } from ${JSON.stringify(`${ROOT}/dist/src/index.js`)};
      const jtm = await connect();
      const p = jtm.submit(Array.from({ length: 20000 }, (_, i) => ({ command: 'echo ' + i })), { pool: 'quiet' });
      setTimeout(() => void jtm.close(), 100);
      process.stdout.write(String((await p).length));
    `;
    const r = await runProcess(process.execPath, ['--input-type=module', '-e', script], {
      env: testEnv({ REDIS_URL: redis.url }),
      timeoutMs: 60_000,
    });
    expect([r.code, r.stdout, r.stderr]).toEqual([0, '20000', '']);
  }, 90_000);
});

describe('API: settings', () => {
  it('connect({ env: null }) is INVALID_INPUT, not a TypeError', async () => {
    await expect(connect({ env: null as unknown as Record<string, string> })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(connect('redis://x' as never)).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('a configFile that is a FIFO with no writer is refused at once, without freezing the process', async () => {
    const fifo = join(tempDir('jtm-api-fifo-'), 'cfg');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    // Before: the open waited for a writer and blocked the event loop (the test run hung) for good.
    await expect(connect({ configFile: fifo, env: {} })).rejects.toThrow(/not a regular file/);
    await expect(connect({ env: { JTM_CONFIG_FILE: fifo } })).rejects.toBeInstanceOf(InvalidInputError);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('RedisUnavailableError is what a connect to nothing gives', async () => {
    await expect(connect({ env: testEnv({ REDIS_URL: 'redis://127.0.0.1:1' }) })).rejects.toBeInstanceOf(
      RedisUnavailableError,
    );
  });
});
