import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { runJtm } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { testEnv } from '../helpers/env.js';

/*
 * The bad-input catalogue, beyond the cases of test/integration/foundation.test.ts: every command, every
 * kind of wrong value. Each must give one line on stderr starting with `jtm <command>:` (or `jtm :` for
 * configuration errors found before a command runs), its documented exit code (1 invalid input; 255 when
 * the Redis URL itself is unusable), nothing on stdout, and no key in Redis.
 */
describe('bad input catalogue', () => {
  const env = testEnv();
  const dir = mkdtempSync(join(tmpdir(), 'jtm-bad2-'));
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const task = (extra: Record<string, unknown>): string =>
    file(
      `t-${Object.keys(extra).join('-')}-${Math.random().toString(36).slice(2)}.json`,
      JSON.stringify({ command: 'ls', pool: { name: 'x' }, ...extra }),
    );
  const pool = (extra: Record<string, unknown>): string => task({ pool: { name: 'x', ...extra } });
  const subdir = join(dir, 'a-directory');
  mkdirSync(subdir);

  type Case = [name: string, args: string[], code: number, env?: Record<string, string>];
  const cases: Case[] = [
    // task files: shape
    ['JSON null', ['submit', '-f', file('null.json', 'null'), '-p', 'x'], 1],
    ['JSON number', ['submit', '-f', file('num.json', '42'), '-p', 'x'], 1],
    ['JSON string', ['submit', '-f', file('str.json', '"ls"'), '-p', 'x'], 1],
    ['empty JSON array', ['submit', '-f', file('empty-arr.json', '[]'), '-p', 'x'], 1],
    ['empty file', ['submit', '-f', file('empty.json', ''), '-p', 'x'], 1],
    [
      'deeply nested JSON',
      ['submit', '-f', file('deep.json', '['.repeat(100_000) + ']'.repeat(100_000)), '-p', 'x'],
      1,
    ],
    ['huge JSON (5 MB command)', ['submit', '-f', task({ command: 'x'.repeat(5_000_000) })], 1],
    [
      'array with one bad task',
      ['submit', '-f', file('arr.json', '[{"command":"ls"},{"command":7}]'), '-p', 'x'],
      1,
    ],
    [
      'JSON lines with a malformed line',
      ['submit', '-f', file('l.jsonl', '{"command":"ls"}\n{"command":\n'), '-p', 'x'],
      1,
    ],
    [
      'UTF-16 file',
      [
        'submit',
        '-f',
        file('u16.json', Buffer.from('{"command":"ls"}', 'utf16le').toString('latin1')),
        '-p',
        'x',
      ],
      1,
    ],
    ['task file is a directory', ['submit', '-f', subdir, '-p', 'x'], 1],
    ['task file below a file', ['submit', '-f', join(file('plain', 'x'), 'below.json'), '-p', 'x'], 1],
    // task files: fields
    ['command is a number', ['submit', '-f', task({ command: 5 })], 1],
    ['command is an array', ['submit', '-f', task({ command: ['ls', '-l'] })], 1],
    ['command with a NUL byte', ['submit', '-f', task({ command: 'ls\u0000; rm -rf /' })], 1],
    ['command of blanks', ['submit', '-f', task({ command: ' \n\t ' })], 1],
    ['pool is a string', ['submit', '-f', task({ pool: 'x' })], 1],
    ['pool is an array', ['submit', '-f', task({ pool: ['x'] })], 1],
    ['negative cpu', ['submit', '-f', pool({ cpu: -1 })], 1],
    ['cpu as a word', ['submit', '-f', pool({ cpu: 'two' })], 1],
    ['fractional node count', ['submit', '-f', pool({ node: 1.5 })], 1],
    ['shared = 2', ['submit', '-f', pool({ shared: 2 })], 1],
    ['time 25:00', ['submit', '-f', pool({ time: '25:00' })], 1],
    ['negative memory', ['submit', '-f', pool({ mem: '-5G' })], 1],
    ['memory in petabytes', ['submit', '-f', pool({ mem: '3P' })], 1],
    ['cluster with command substitution', ['submit', '-f', pool({ cluster: '$(reboot)' })], 1],
    ['qos with a newline', ['submit', '-f', pool({ qos: 'normal\n#SBATCH --x' })], 1],
    ['timeout "forever"', ['submit', '-f', task({ timeout: 'forever' })], 1],
    ['timeout 0s', ['submit', '-f', task({ timeout: '0s' })], 1],
    ['timeout as a number', ['submit', '-f', task({ timeout: 30 })], 1],
    ['timeout beyond 365 days', ['submit', '-f', task({ timeout: '366d' })], 1],
    ['allow_empty_outputs "yes"', ['submit', '-f', task({ allow_empty_outputs: 'yes' })], 1],
    ['output_dir as an object', ['submit', '-f', task({ output_dir: { p: '/tmp' } })], 1],
    // submit flags
    ['pool with a hash tag', ['submit', '-cmd', 'ls', '-p', '{jtm}']],
    ['pool with a glob', ['submit', '-cmd', 'ls', '-p', 'a*']],
    ['pool with a newline', ['submit', '-cmd', 'ls', '-p', 'a\nb']],
    ['pool of 200 characters', ['submit', '-cmd', 'ls', '-p', 'p'.repeat(200)]],
    ['reserved pool _manager', ['submit', '-cmd', 'ls', '-p', '_manager']],
    ['pool with a backtick', ['submit', '-cmd', 'ls', '-p', 'a`id`']],
    ['non-ASCII pool', ['submit', '-cmd', 'ls', '-p', 'pööl']],
    ['-c 0', ['submit', '-cmd', 'ls', '-p', 'x', '-c', '0']],
    ['-N abc', ['submit', '-cmd', 'ls', '-p', 'x', '-N', 'abc']],
    ['-t 10m (not hh:mm:ss)', ['submit', '-cmd', 'ls', '-p', 'x', '-t', '10m']],
    ['-s yes', ['submit', '-cmd', 'ls', '-p', 'x', '-s', 'yes']],
    ['--timeout -5s', ['submit', '-cmd', 'ls', '-p', 'x', '--timeout=-5s']],
    ['--timeout 400d', ['submit', '-cmd', 'ls', '-p', 'x', '--timeout', '400d']],
    ['--timeout 9000:00:00', ['submit', '-cmd', 'ls', '-p', 'x', '--timeout', '9000:00:00']],
    ['bad --log-level', ['submit', '-cmd', 'ls', '-p', 'x', '--log-level', 'loud']],
    ['unexpected argument', ['submit', '-cmd', 'ls', '-p', 'x', 'extra']],
    // ids
    ['fractional task id', ['status', '-tid', '1.5']],
    ['task id 0', ['status', '-tid', '0']],
    ['task id beyond 2^53', ['isalive', '-tid', '99999999999999999999']],
    ['empty task id', ['isalive', '-tid', '']],
    ['hex task id', ['kill', '-tid', '0x10']],
    ['kill with a bad --wait', ['kill', '-tid', '1', '--wait', 'forever']],
    ['unknown flag on status', ['status', '-tid', '1', '--colour']],
    ['unknown command', ['frobnicate', '-tid', '1']],
    // worker and check-worker
    ['worker pool with a space', ['worker', '-p', 'a b']],
    ['worker --slots 0', ['worker', '-p', 'x', '--slots', '0']],
    ['worker --slots abc', ['worker', '-p', 'x', '--slots', 'abc']],
    ['worker --lifetime soon', ['worker', '-p', 'x', '--lifetime', 'soon']],
    ['worker id with a slash', ['worker', '-p', 'x', '--worker_id', 'a/b']],
    ['worker -hb never', ['worker', '-p', 'x', '-hb', 'never']],
    ['worker -wt elastic', ['worker', '-p', 'x', '-wt', 'elastic']],
    ['worker -ld pointing at a file', ['worker', '-p', 'x', '-ld', file('not-a-dir', 'x')]],
    ['check-worker pool with a semicolon', ['check-worker', '-p', 'a;b']],
    // configuration
    ['JTM_PREFIX with a space', ['status', '-tid', '1'], 1, { JTM_PREFIX: 'a b' }],
    ['JTM_HEARTBEAT_INTERVAL=fast', ['worker', '-p', 'x'], 1, { JTM_HEARTBEAT_INTERVAL: 'fast' }],
    ['missing --config file', ['status', '-tid', '1', '--config', join(dir, 'none.env')]],
    [
      'config file with a bad line',
      ['status', '-tid', '1', '--config', file('bad.env', 'this is not KEY=VALUE')],
    ],
    ['REDIS_URL of another scheme', ['status', '-tid', '1'], 255, { REDIS_URL: 'http://127.0.0.1:6379' }],
  ].map(c => (c.length === 2 ? [c[0], c[1], 1] : c) as Case);

  it('has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.concurrent.each(cases)(
    '%s → one line on stderr, documented exit code, nothing written',
    async (_n, args, code, extra) => {
      const r = await runJtm(args, { ...env, ...(extra ?? {}) });
      expect(r.stdout).toBe('');
      expect(r.code).toBe(code);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^jtm [a-z-]*: \S/);
      expect(r.stderr.length).toBeLessThan(1000);
    },
  );

  it('left no key in Redis', async () => {
    const ctx = await openTestContext(env);
    try {
      expect(await ctx.redis.keys(`${env['JTM_PREFIX']}*`)).toEqual([]);
    } finally {
      await closeContext(ctx);
    }
  });
});
