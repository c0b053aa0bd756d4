// Adversary 30 F2: a `jtm submit` hung for 11 minutes, printing nothing, after its connection was reset at its
// first command and ioredis's reconnect landed on a connection that was accepted and then never answered (a
// stateful firewall or NAT dropping it): the connection was not "ready" (its handshake unanswered), and the watch
// that ends a silent connection looked only at ready ones. Every command must end within its bounds.
import { describe, expect, it } from 'vitest';

import { runJtm } from '../helpers/cli.js';
import { testEnv } from '../helpers/env.js';
import { wiredProxy } from '../helpers/tcp-proxy.js';

describe('a connection reset, then a reconnect that is never answered', () => {
  // What each says: unreachable (255); a kill whose request was sent may have been applied (255, KILL_UNSETTLED);
  // isalive, for Cromwell, `unknown` with exit 0.
  for (const [command, args, code, stdout, stderr] of [
    ['submit', ['submit', '-cmd', 'true', '-p', 'silent'], 255, '', /^jtm submit: cannot reach Redis/],
    ['status', ['status', '-tid', '1'], 255, '', /^jtm status: cannot reach Redis/],
    ['kill', ['kill', '-tid', '1'], 255, '', /^jtm kill: the kill of task 1 was sent/],
    [
      'isalive',
      ['isalive', '-tid', '1'],
      0,
      'unknown\n',
      /^jtm isalive: cannot reach Redis at .*: answering unknown \(exit 0\)$/,
    ],
  ] as const) {
    it(`jtm ${command} ends as for Redis unreachable (exit ${code}), not waiting for ever`, async () => {
      const env = testEnv();
      const port = Number(new URL(env['REDIS_URL']!).port);
      let first = true;
      const proxy = await wiredProxy(port, (client, toRedis) => {
        // Only the first connection reaches Redis; later ones are accepted and left silent.
        if (!first) return;
        first = false;
        const server = toRedis();
        server.on('data', chunk => client.writable && client.write(chunk));
        let handshake = true;
        client.on('data', chunk => {
          // Past the connection's own setup (CLIENT SETNAME, INFO, the shard count), its first command is cut.
          if (!handshake && /evalsha|hget|hmget|evalsha/i.test(chunk.toString('latin1'))) {
            client.resetAndDestroy();
            return;
          }
          if (/shards/.test(chunk.toString('latin1'))) handshake = false;
          server.write(chunk);
        });
      });
      try {
        const started = Date.now();
        const r = await runJtm(
          [...args],
          {
            ...env,
            REDIS_URL: proxy.url,
            JTM_CONNECT_TIMEOUT: '1s',
            JTM_SUBMIT_RETRY: '2s',
            JTM_KILL_RETRY: '2s',
            JTM_ISALIVE_RETRY: '2s',
          },
          { timeoutMs: 40_000 },
        );
        expect([r.code, r.stdout]).toEqual([code, stdout]);
        expect(r.stderr.trim()).toMatch(stderr);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        // Its bounds: JTM_CONNECT_TIMEOUT per try, JTM_*_RETRY in all, with a loaded machine's slack.
        expect(Date.now() - started).toBeLessThan(20_000);
      } finally {
        proxy.close();
      }
    }, 60_000);
  }
});

// Adversary 31 F6: `jtm status` exited 255 at a single reset (15 of 32 under a CLIENT KILL every 10 ms), where
// isalive tried again. A read: tried again on a new connection within JTM_CONNECT_TIMEOUT.
describe('a connection reset once, then answered', () => {
  for (const [name, args, stdout] of [
    ['status', ['status', '-tid', '987654321'], /^invalidtask\n$/],
    ['status --json', ['status', '-tid', '987654321', '--json'], /task_id|status/],
  ] as const) {
    it(`jtm ${name} answers, exit 1 for a task that is not there (255 before)`, async () => {
      const env = testEnv();
      const port = Number(new URL(env['REDIS_URL']!).port);
      let first = true;
      const proxy = await wiredProxy(port, (client, toRedis) => {
        const server = toRedis();
        server.on('data', chunk => client.writable && client.write(chunk));
        // The first connection is cut at its first bytes (its handshake: ioredis does not resend those, and the
        // connect failed "Connection is closed."); the next ones pass.
        const cut = first;
        first = false;
        client.on('data', chunk => {
          if (cut) {
            client.resetAndDestroy();
            return;
          }
          server.write(chunk);
        });
      });
      try {
        const r = await runJtm(
          [...args],
          { ...env, REDIS_URL: proxy.url, JTM_CONNECT_TIMEOUT: '2s' },
          { timeoutMs: 30_000 },
        );
        expect([r.code, r.stderr]).toEqual([1, '']);
        expect(r.stdout).toMatch(stdout);
        expect(first).toBe(false);
      } finally {
        proxy.close();
      }
    }, 60_000);
  }
});
