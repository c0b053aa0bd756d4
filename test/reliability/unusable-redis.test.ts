// A Redis that answers but cannot serve now — another client's script (BUSY), no room for one more client, a
// replica cut from its master (MASTERDOWN) — is named in the command's line, in Redis's own words; it was
// "cannot reach Redis at … (Connection is closed.)" (adversary 24 F8). Still exit 255, and isalive `unknown`.
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';

import { describe, expect, it } from 'vitest';

// @ts-expect-error plain JavaScript helper shared with the demo
import { freePort } from '../../scripts/lib/local-redis.mjs';
import { runJtm } from '../helpers/cli.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { redisCli, startPlainRedis, startServer, type Server } from './servers.js';

const free = freePort as () => Promise<number>;

/** status, submit and kill: exit 255 with `line`; isalive: `unknown`, exit 0, and the same cause in its one line. */
async function expectNamed(server: Server, line: RegExp): Promise<void> {
  const env = testEnv({ REDIS_URL: `redis://127.0.0.1:${server.port}`, JTM_KILL_RETRY: '1s' });
  for (const args of [
    ['status', '-tid', '1'],
    ['submit', '-cmd', 'true', '-p', 'u'],
    ['kill', '-tid', '1'],
  ]) {
    const r = await runJtm(args, env);
    expect([r.code, r.stderr], args[0]).toEqual([255, expect.stringMatching(line)]);
    expect(r.stderr.trim().split('\n'), args[0]).toHaveLength(1);
  }
  const alive = await runJtm(['isalive', '-tid', '1'], { ...env, JTM_ISALIVE_RETRY: '1s' });
  expect([alive.code, alive.stdout], alive.stderr).toEqual([0, 'unknown\n']);
  // It was a pino JSON line saying "Redis unreachable" whatever Redis had answered (adversary 34 L2).
  const cause = new RegExp(line.source.replace(/^\^jtm \\w\+: /, '^jtm isalive: '));
  expect(alive.stderr).toMatch(cause);
  expect(alive.stderr).toMatch(/: answering unknown \(exit 0\)\n$/);
  expect(alive.stderr.trim().split('\n')).toHaveLength(1);
}

describe('a Redis that answers but cannot serve now', () => {
  it('busy running a script (BUSY)', async () => {
    const server = await startPlainRedis(['--busy-reply-threshold', '100']);
    const script = spawn('redis-cli', ['-p', String(server.port), 'EVAL', 'while true do end', '0'], {
      stdio: 'ignore',
    });
    try {
      await waitFor(() => /BUSY/.test(redisCli(['-p', String(server.port), 'PING'])), 'BUSY');
      await expectNamed(server, /^jtm \w+: Redis at \S+ is busy running a script \(BUSY Redis is busy/);
    } finally {
      script.kill('SIGKILL');
      await server.stop();
    }
  }, 60_000);

  it('no room for one more client (maxclients)', async () => {
    const server = await startPlainRedis(['--maxclients', '1']);
    const held = connect(server.port, '127.0.0.1');
    try {
      // Counted by the server once it has answered (the start's own redis-cli may still have the one place).
      const first = await new Promise(r => held.once('data', r).write('PING\r\n'));
      expect(String(first)).toBe('+PONG\r\n');
      await expectNamed(server, /^jtm \w+: Redis at \S+ refuses more clients \(ERR max number of clients/);
    } finally {
      held.destroy();
      await server.stop();
    }
  }, 60_000);

  it('a replica cut from its master (MASTERDOWN)', async () => {
    const [port, master] = [await free(), await free()];
    const server = await startServer(
      ['--port', `${port}`, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'].concat([
        '--replicaof',
        '127.0.0.1',
        `${master}`,
        '--replica-serve-stale-data',
        'no',
      ]),
      port,
      () => /MASTERDOWN/.test(spawnSync('redis-cli', ['-p', `${port}`, 'PING'], { encoding: 'utf8' }).stdout),
    );
    try {
      await expectNamed(server, /^jtm \w+: Redis at \S+ is a replica cut from its master \(MASTERDOWN /);
    } finally {
      await server.stop();
    }
  }, 60_000);
});
