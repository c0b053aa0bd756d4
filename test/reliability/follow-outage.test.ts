// A follower of a task's output that loses Redis for a moment goes on where it stopped (adversary 26 F5): one TCP
// reset of `jtm logs --follow`'s connection ended it, exit 255 "(Connection is closed.)", after 85,200 of 169,200
// bytes; replies held for 5 s ended it "(no answer within 3000 ms)". Now it connects again for JTM_FOLLOW_RETRY and
// prints every byte once, in order; past that bound it ends 255 as before, having printed an exact prefix.
// The follower reaches Redis through a proxy; the worker directly.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ClientClosedError, connect, type JtmClient } from '../../src/index.js';
import { logsBytes, runJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { usePrivateRedis } from '../helpers/local-redis.js';
import { collecting } from '../helpers/log-lines.js';
import { TcpProxy, wiredProxy } from '../helpers/tcp-proxy.js';
import { context, start, stopTracked } from '../helpers/tracked.js';

/** 160,003 bytes: every byte value (NUL, CR, LF, 0xff, invalid UTF-8), the last one not a newline. */
const PATTERN = Buffer.from(Array.from({ length: 160_003 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));
const CHUNK = 4000;
/** Writes PATTERN in 41 pieces `pause` s apart (0.2: about 8 s): a follower reads it piece by piece. */
const slowly = (file: string, pause = 0.2): string =>
  `for i in $(seq 0 ${Math.ceil(PATTERN.length / CHUNK) - 1}); do dd if=${file} bs=${CHUNK} skip=$i count=1 status=none; sleep ${pause}; done`;

/** The follower's stderr, as the lines of its logger (JSON) and the rest. */
function stderrOf(err: string): { logged: { msg: string }[]; plain: string[] } {
  const logged: { msg: string }[] = [];
  const plain: string[] = [];
  for (const line of err.split('\n').filter(Boolean)) {
    if (line.startsWith('{')) logged.push(JSON.parse(line) as { msg: string });
    else plain.push(line);
  }
  return { logged, plain };
}

const LOST =
  /^lost Redis while following task \d+'s output: connecting again for up to \d+ s \(JTM_FOLLOW_RETRY\)/;
const RESUMED = /^Redis answers again: task \d+'s output resumes after the \d+ bytes already printed$/;

/** Each loss said once, each followed by its resumption, and nothing else. */
function expectLossesResumed(msgs: string[]): void {
  expect(msgs.length, msgs.join('\n')).toBeGreaterThanOrEqual(2);
  msgs.forEach((m, i) => expect(m).toMatch(i % 2 === 0 ? LOST : RESUMED));
  expect(msgs.length % 2).toBe(0);
}

describe('a follower that loses Redis for a moment resumes where it stopped (adversary 26 F5)', () => {
  const privateRedis = usePrivateRedis();
  const env = testEnv({ JTM_CONNECT_TIMEOUT: '1s' });
  const target = new URL(env['REDIS_URL']!);
  const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port) });
  const via = (retry: string): Record<string, string> => ({
    ...env,
    REDIS_URL: proxy.url,
    JTM_FOLLOW_RETRY: retry,
  });
  let pattern = '';

  beforeAll(async () => {
    await proxy.up();
    pattern = join(tempDir('jtm-follow-outage-'), 'pattern');
    writeFileSync(pattern, PATTERN);
    start(['worker', '-p', 'fout', '--slots', '2'], env);
    await waitWorkers(env, 'fout', 1, 50_000);
  });
  afterAll(async () => {
    await stopTracked();
    await proxy.down();
  });

  /** Submits the slow writer and starts `jtm logs --follow` on it through the proxy; resolves at its first bytes. */
  async function follow(retry: string): Promise<{ logs: ReturnType<typeof logsBytes>; id: number }> {
    const [id] = taskIds((await runJtm(['submit', '-p', 'fout', '-cmd', slowly(pattern)], env)).stdout);
    let first!: () => void;
    const reading = new Promise<void>(r => (first = r));
    const logs = logsBytes(via(retry), id!, true, 90_000, () => first());
    await reading;
    // Wrapped: an async function's promise would take on the one it returned, and wait for the follow's end.
    return { logs, id: id! };
  }

  it('CLI: its connection reset three times mid-follow: every byte once, in order, exit 0', async () => {
    const { logs } = await follow('20s');
    // 2.5 s apart: a connection younger than 2 × JTM_CONNECT_TIMEOUT is reconnected by ioredis itself.
    let cut = 0;
    for (let k = 0; k < 3; k++) {
      await sleep(2500);
      cut += proxy.reset();
    }
    const r = await logs;
    // Before: 255, "jtm logs: cannot reach Redis … (Connection is closed.)" after part of the output.
    expect(r.code, r.err).toBe(0);
    expect(cut, 'the follower was connected at each reset').toBeGreaterThanOrEqual(3);
    expect(r.out.length).toBe(PATTERN.length);
    expect(r.out.equals(PATTERN)).toBe(true);
    const { logged, plain } = stderrOf(r.err);
    expect(plain).toEqual([]);
    expectLossesResumed(logged.map(l => l.msg));
  });

  it('CLI: its connection reset at its handshake, once connected: ridden out as later resets are, exit 0 (adversary 28 F7); one that never reached Redis fails at once', async () => {
    const [id] = taskIds((await runJtm(['submit', '-p', 'fout', '-cmd', slowly(pattern)], env)).stdout);
    // The follower's first connection is cut (RST) as its first bytes come (connected, nothing answered yet:
    // what a reset in a follower's first second does). Later connections pass. ioredis's own reconnection
    // resends a read that a reset cuts later, but not a handshake.
    let cut = 0;
    const wired = await wiredProxy(Number(target.port), (client, toRedis) => {
      const redis = toRedis();
      redis.on('data', (chunk: Buffer) => client.write(chunk));
      client.on('data', (chunk: Buffer) => {
        if (cut === 0) {
          cut++;
          client.resetAndDestroy();
          return;
        }
        redis.write(chunk);
      });
    });
    try {
      const r = await logsBytes({ ...env, REDIS_URL: wired.url, JTM_FOLLOW_RETRY: '20s' }, id!, true, 90_000);
      // Before: 255 at once, "jtm logs: cannot reach Redis … (Connection is closed.)", nothing printed.
      expect(cut).toBe(1);
      expect(r.code, r.err).toBe(0);
      expect(r.out.equals(PATTERN)).toBe(true);
      // Connected again at once: nothing was lost to say.
      expect(stderrOf(r.err)).toEqual({ logged: [], plain: [] });
    } finally {
      wired.close();
    }
    // The documented rule stands: a follower that never reached Redis (nothing listens) fails at once, 255.
    const closed = createServer();
    await new Promise<void>(r => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>(r => closed.close(() => r()));
    const t0 = Date.now();
    const never = await logsBytes(
      { ...env, REDIS_URL: `redis://127.0.0.1:${port}`, JTM_FOLLOW_RETRY: '20s' },
      id!,
      true,
      30_000,
    );
    expect(never.code, never.err).toBe(255);
    expect(never.err).toMatch(/cannot reach Redis/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('CLI: replies held for 4 s (its JTM_CONNECT_TIMEOUT is 1 s): every byte once, in order, exit 0', async () => {
    const { logs } = await follow('20s');
    await sleep(2500);
    await proxy.hold(4000);
    const r = await logs;
    // Before: 255, "jtm logs: cannot reach Redis … (no answer within 1000 ms)".
    expect(r.code, r.err).toBe(0);
    expect(r.out.equals(PATTERN)).toBe(true);
    const { logged, plain } = stderrOf(r.err);
    expect(plain).toEqual([]);
    expectLossesResumed(logged.map(l => l.msg));
  });

  it('CLI: Redis out of reach for longer than JTM_FOLLOW_RETRY: exit 255 after it, an exact prefix printed', async () => {
    const { logs } = await follow('3s');
    await sleep(2500);
    const t0 = Date.now();
    await proxy.down();
    let r: Awaited<typeof logs>;
    try {
      r = await logs;
    } finally {
      await proxy.up();
    }
    const took = Date.now() - t0;
    expect(r.code, r.err).toBe(255);
    expect(r.out.length).toBeGreaterThan(0);
    expect(r.out.length).toBeLessThan(PATTERN.length);
    expect(r.out.equals(PATTERN.subarray(0, r.out.length))).toBe(true);
    const { logged, plain } = stderrOf(r.err);
    expect(logged.map(l => l.msg)).toEqual([expect.stringMatching(LOST)]);
    expect(plain).toEqual([expect.stringMatching(/^jtm logs: cannot reach Redis/)]);
    // The bound, then one more try's connect (at most twice JTM_CONNECT_TIMEOUT) and its probes.
    expect(took).toBeGreaterThanOrEqual(2900);
    expect(took).toBeLessThan(12_000);
  });

  it('CLI: Redis killed -9 and restarted on its AOF mid-follow: every byte once, in order, exit 0', async () => {
    // A server of its own, and a worker on it whose lease (3 beats of 2 s) outlasts the restart: its task runs on.
    const dir = tempDir('jtm-follow-aof-');
    const AOF = ['--appendonly', 'yes', '--appendfsync', 'everysec'];
    const redis = await privateRedis({ dir, args: AOF });
    const own = testEnv({
      REDIS_URL: redis.url,
      JTM_CONNECT_TIMEOUT: '1s',
      JTM_HEARTBEAT_INTERVAL: '2s',
      JTM_FOLLOW_RETRY: '20s',
    });
    start(['worker', '-p', 'faof', '--slots', '1'], own);
    await waitWorkers(own, 'faof', 1, 50_000);
    const [id] = taskIds((await runJtm(['submit', '-p', 'faof', '-cmd', slowly(pattern)], own)).stdout);
    let first!: () => void;
    const reading = new Promise<void>(r => (first = r));
    const logs = logsBytes(own, id!, true, 90_000, () => first());
    await reading;
    await sleep(2500);
    await redis.stop('SIGKILL');
    await sleep(1500);
    await privateRedis({ dir, port: redis.port, args: AOF });
    const r = await logs;
    expect(r.code, r.err).toBe(0);
    expect(r.out.length).toBe(PATTERN.length);
    expect(r.out.equals(PATTERN)).toBe(true);
    const { logged, plain } = stderrOf(r.err);
    expect(plain).toEqual([]);
    expectLossesResumed(logged.map(l => l.msg));
  });

  it('CLI: the record flushed while Redis was out of reach: the resumed follow says so (TASK_RECORD_LOST, 255), it does not wait', async () => {
    const ctx = await context(env);
    const { logs, id } = await follow('20s');
    await sleep(1000);
    await proxy.down();
    const t0 = Date.now();
    try {
      // The task's own keys, as a flush takes them (the test Redis is shared).
      await ctx.redis.del(ctx.keys.task(id), ...(await ctx.redis.keys(`${ctx.keys.task(id)}:*`)));
      await sleep(2000);
    } finally {
      await proxy.up();
    }
    const r = await logs;
    expect(r.code, r.err).toBe(255);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.out.equals(PATTERN.subarray(0, r.out.length))).toBe(true);
    const { logged, plain } = stderrOf(r.err);
    expectLossesResumed(logged.map(l => l.msg));
    expect(plain).toEqual([
      expect.stringMatching(
        new RegExp(`^jtm logs: task ${id}'s record is gone from Redis while its output was followed`),
      ),
    ]);
  });

  it('API: followLogs under a reset and replies held, its stdout file not readable here (every byte from the Redis copy): each byte once', async () => {
    const dir = join(tempDir('jtm-follow-outage-api-'), 'out');
    mkdirSync(dir);
    const log = collecting();
    const jtm: JtmClient = await connect({ env: via('20s'), logger: log.logger });
    try {
      // Slower than the others (about 16 s): the outage below lasts about 8 s, and a task that ended during it
      // left only the tail of its output in Redis (64 KiB), less than the follower still had to read, with its file
      // unreadable here: a gap (2,467 bytes, once in a full run under load).
      const [id] = await jtm.submit(
        { command: slowly(pattern, 0.4), stdout: join(dir, 'task.out') },
        { pool: 'fout' },
      );
      const chunks: Buffer[] = [];
      let first!: () => void;
      const reading = new Promise<void>(r => (first = r));
      const done = jtm.followLogs(id!, c => {
        chunks.push(Buffer.from(c));
        first();
      });
      await reading;
      // The file moved away: a part missed would be a gap (OUTPUT_GAP), not read from it.
      renameSync(dir, `${dir}-moved`);
      // A reset (the client connects again before its next read, unless a read was waiting on the connection:
      // then that read fails), then replies held for 3 s (the read waiting fails after JTM_CONNECT_TIMEOUT).
      await sleep(2500);
      const cut = proxy.reset();
      await sleep(2500);
      await proxy.hold(3000);
      // Before: rejected with REDIS_UNAVAILABLE (Connection is closed., or no answer within 1000 ms).
      await done;
      expect(cut).toBeGreaterThanOrEqual(1);
      const got = Buffer.concat(chunks);
      expect(got.length).toBe(PATTERN.length);
      expect(got.equals(PATTERN)).toBe(true);
      expectLossesResumed(log.lines().map(l => String(l['msg'])));
    } finally {
      await jtm.close();
    }
  });

  it('API: close() while followLogs waits for Redis to come back: it stops at once with CLIENT_CLOSED', async () => {
    const log = collecting();
    const jtm: JtmClient = await connect({ env: via('60s'), logger: log.logger });
    const [id] = await jtm.submit({ command: slowly(pattern) }, { pool: 'fout' });
    let first!: () => void;
    const reading = new Promise<void>(r => (first = r));
    const outcome = jtm
      .followLogs(id!, () => first())
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    await reading;
    await proxy.down();
    try {
      await waitFor(() => log.lines().some(l => LOST.test(String(l['msg']))), 'the loss said', 20_000);
      const t0 = Date.now();
      await jtm.close();
      expect(await outcome).toBeInstanceOf(ClientClosedError);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await proxy.up();
    }
  });
});
