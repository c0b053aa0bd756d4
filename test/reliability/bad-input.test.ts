import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, inject, it } from 'vitest';

import { BIN, ROOT, runJtm, taskIds } from '../helpers/cli.js';
import { useTestContext } from '../helpers/context.js';
import { tempDir, testEnv } from '../helpers/env.js';

/** A temporary directory (removed after the file) and a writer of files in it. */
function scratchDir(prefix: string): { dir: string; file: (name: string, text: string) => string } {
  const dir = tempDir(prefix);
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  return { dir, file };
}

/*
 * The bad-input catalogue, beyond the cases of test/integration/foundation.test.ts: every command, every
 * kind of wrong value. Each must give one line on stderr starting with `jtm <command>:` (or `jtm :` for
 * configuration errors found before a command runs), its documented exit code (1 invalid input; 255 when
 * the Redis URL itself is unusable), nothing on stdout, and no key in Redis.
 */
describe('bad input catalogue', () => {
  const env = testEnv();
  const ctx = useTestContext(env);
  const { dir, file } = scratchDir('jtm-bad2-');
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
    // the first catalogue (moved here from test/integration/foundation.test.ts, where each spawned serially)
    ['malformed JSON', ['submit', '-f', file('malformed.json', '{"command": "ls",')]],
    ['no command', ['submit', '-p', 'x']],
    ['empty command', ['submit', '-cmd', '', '-p', 'x']],
    ['time 1:2', ['submit', '-cmd', 'ls', '-p', 'x', '-t', '1:2']],
    ['time 00:99:00', ['submit', '-cmd', 'ls', '-p', 'x', '-t', '00:99:00']],
    [
      'unknown pool field',
      ['submit', '-f', file('mwpn.json', '{"command":"ls","pool":{"name":"x","mwpn":2}}')],
    ],
    [
      'unknown task field',
      ['submit', '-f', file('extra.json', '{"command":"ls","colour":"red","pool":{"name":"x"}}')],
    ],
    // Accepted up to 1,000,000 (adversary 25 F3): the batch script started that many workers on one node.
    ['-nwpn 100000', ['submit', '-cmd', 'ls', '-p', 'x', '-cl', 'local', '-nwpn', '100000']],
    ['task file nwpn 257', ['submit', '-f', pool({ nwpn: 257 })]],
    [
      'worker -wt dynamic -nwpn 100000',
      [
        'worker',
        '-wt',
        'dynamic',
        '-cl',
        'perlmutter',
        '-p',
        'x',
        '-t',
        '00:05:00',
        '-nwpn',
        '100000',
        '-dr',
      ],
      1,
      { JTM_SITE_CONFIG: join(ROOT, 'examples', 'sites.json') },
    ],
    ['pool with shell metacharacters', ['submit', '-cmd', 'ls', '-p', 'a;rm -rf ~']],
    ['pool with a Redis key separator', ['submit', '-cmd', 'ls', '-p', 'a:b']],
    ['no pool', ['submit', '-cmd', 'ls']],
    ['command over the limit', ['submit', '-cmd', 'x'.repeat(70_000), '-p', 'x']],
    ['missing task file', ['submit', '-f', join(dir, 'nope.json'), '-p', 'x']],
    ['binary task file', ['submit', '-f', file('bin.json', '\u0000\u0001\u0002'), '-p', 'x']],
    ['memory string', ['submit', '-cmd', 'ls', '-p', 'x', '-m', 'lots']],
    ['account with a space', ['submit', '-cmd', 'ls', '-p', 'x', '-A', 'a b']],
    ['both -cmd and -f', ['submit', '-cmd', 'ls', '-f', file('ok.json', '{"command":"ls"}'), '-p', 'x']],
    ['unknown flag', ['submit', '-cmd', 'ls', '-p', 'x', '--bogus']],
    ['non-numeric task id', ['status', '-tid', 'abc']],
    ['negative task id', ['isalive', '-tid', '-3']],
    ['kill without id', ['kill']],
    ['worker without pool', ['worker']],
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
    // Counts given as strings were coerced (adversary 25 F8): refused, and the file's other tasks not queued.
    ['cpu "4"', ['submit', '-f', pool({ cpu: '4' })], 1],
    ['shared "0"', ['submit', '-f', pool({ shared: '0' })], 1],
    ['node "2"', ['submit', '-f', pool({ node: '2' })], 1],
    ['nwpn "2"', ['submit', '-f', pool({ nwpn: '2' })], 1],
    [
      'JSON lines, cpu "4" on the second line',
      [
        'submit',
        '-f',
        file(
          'cpu-str.jsonl',
          '{"command":"ls","pool":{"name":"x"}}\n{"command":"ls","pool":{"name":"x","cpu":"4"}}\n',
        ),
      ],
      1,
    ],
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
    // An empty path was the submitter's cwd, a directory: the rc JTM promises could never be written (adversary 34 M4).
    ['empty --rc-file', ['submit', '-cmd', 'ls', '-p', 'x', '--rc-file', '']],
    ['empty --rc-file=', ['submit', '-cmd', 'ls', '-p', 'x', '--rc-file=']],
    // ids
    ['fractional task id', ['status', '-tid', '1.5']],
    ['task id 0', ['status', '-tid', '0']],
    ['task id beyond 2^53', ['isalive', '-tid', '99999999999999999999']],
    ['empty task id', ['isalive', '-tid', '']],
    ['hex task id', ['kill', '-tid', '0x10']],
    ['kill with a bad --wait', ['kill', '-tid', '1', '--wait', 'forever']],
    ['unknown flag on status', ['status', '-tid', '1', '--colour']],
    ['unknown command', ['frobnicate', '-tid', '1']],
    // A word right after the command name was oclif's "command pools:extra not found", exit 2 (adversary 34 M3).
    ['stray word after pools', ['pools', 'extra']],
    ['stray word after submit', ['submit', 'extra', '-cmd', 'ls', '-p', 'x']],
    ['stray word after report', ['report', 'extra']],
    ['stray word after check-worker', ['check-worker', 'extra', '-p', 'x']],
    ['unknown command after help', ['help', 'extra']],
    // worker and check-worker
    ['worker pool with a space', ['worker', '-p', 'a b']],
    ['worker --slots 0', ['worker', '-p', 'x', '--slots', '0']],
    ['worker --slots abc', ['worker', '-p', 'x', '--slots', 'abc']],
    ['worker --lifetime soon', ['worker', '-p', 'x', '--lifetime', 'soon']],
    ['worker id with a slash', ['worker', '-p', 'x', '--worker_id', 'a/b']],
    ['worker -hb never', ['worker', '-p', 'x', '-hb', 'never']],
    // Accepted without a word before (adversary 5 G12): a dead worker's tasks held for 60 days.
    ['worker -hb 20d', ['worker', '-p', 'x', '-hb', '20d']],
    ['worker --slots 100000', ['worker', '-p', 'x', '--slots', '100000']],
    // Empty, as every other empty period (adversary 15 P2: the default ran without a word).
    ['worker -hb empty', ['worker', '-p', 'x', '-hb', '']],
    ['manager --sweep-interval empty', ['manager', '--sweep-interval=']],
    ['worker -wt elastic', ['worker', '-p', 'x', '-wt', 'elastic']],
    ['worker -ld pointing at a file', ['worker', '-p', 'x', '-ld', file('not-a-dir', 'x')]],
    ['manager --log_dir pointing at a file', ['manager', '--log_dir', file('not-a-dir-m', 'x')]],
    ['manager with JTM_LOG_DIR a file', ['manager'], 1, { JTM_LOG_DIR: file('not-a-dir-e', 'x') }],
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
    expect(await ctx().redis.keys(`${env['JTM_PREFIX']}*`)).toEqual([]);
  });
});

/*
 * Issue 12 (items 8, 14, 15, 16): the one line must say what is wrong (oclif's parse errors used to print only
 * their heading, "Parsing --ncpu"), and what is ambiguous is refused rather than resolved silently.
 */
describe('bad input: the line says what is wrong, ambiguity is refused', () => {
  const env = testEnv();
  const ctx = useTestContext(env);
  const { dir, file } = scratchDir('jtm-bad3-');
  const withCpu = file('cpu.json', '{"command":"ls","pool":{"name":"a","cpu":2}}');
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const subdirOf = (parent: string): string => {
    const d = join(parent, 'a-directory');
    mkdirSync(d, { recursive: true });
    return d;
  };

  type Case = [name: string, args: string[], code: number, message: RegExp, env?: Record<string, string>];
  const cases: Case[] = [
    ['-c 1.5', ['submit', '-cmd', 'ls', '-p', 'x', '-c', '1.5'], 1, /--ncpu: .*integer.*1\.5/],
    ['-N -1', ['submit', '-cmd', 'ls', '-p', 'x', '-N', '-1'], 1, /--nnodes: .*-1/],
    ['--slots 1e3', ['worker', '-p', 'x', '--slots', '1e3'], 1, /--slots: .*1e3/],
    ['dashboard --port -1', ['dashboard', '--port', '-1'], 1, /--port: .*-1/],
    ['remove-pool without -p', ['remove-pool'], 1, /no pool given: use -p/],
    [
      'manager --sweep-interval 0',
      ['manager', '--sweep-interval', '0'],
      1,
      /--sweep-interval must be longer than 0/,
    ],
    [
      'JTM_SWEEP_INTERVAL=0',
      ['manager'],
      1,
      /JTM_SWEEP_INTERVAL=0 must be longer than 0/,
      { JTM_SWEEP_INTERVAL: '0' },
    ],
    [
      'unknown global flag',
      ['--bogus', 'status', '-tid', '5'],
      1,
      /^jtm : unknown flag --bogus before the command/,
    ],
    ['global flag and no command', ['--debug'], 1, /no command given after --debug/],
    [
      'a command taken for the log level',
      ['--log-level', 'status', '-tid', '1'],
      1,
      /^jtm : --log-level needs a level before the command .*; got the command status$/m,
    ],
    ['a command taken for -l', ['-l', 'status', '-tid', '1'], 1, /--log-level needs a level/],
    ['kill with two ids', ['kill', '999', '-tid', '1'], 1, /two task ids given/],
    ['status with two ids', ['status', '7', '-tid', '1'], 1, /two task ids given/],
    // --json takes the oclif path instead of the fast path: the same refusal.
    ['kill with two ids (oclif path)', ['kill', '999', '-tid', '1', '--json'], 1, /two task ids given/],
    ['--zerofile=yes', ['submit', '-cmd', 'ls', '-p', 'x', '--zerofile=yes'], 1, /--zerofile takes no value/],
    ['-zf=yes', ['submit', '-cmd', 'ls', '-p', 'x', '-zf=yes'], 1, /--zerofile takes no value/],
    ['--json=yes', ['status', '--json=yes', '-tid', '1'], 1, /^jtm status: --json takes no value/],
    ['--dry_run=no', ['worker', '-wt', 'dynamic', '-p', 'x', '--dry_run=no'], 1, /--dry_run takes no value/],
    [
      'duplicate key in a task file',
      ['submit', '-f', file('dup.json', '{"command":"ls","command":"rm -rf ~","pool":{"name":"a"}}')],
      1,
      /key "command" given twice/,
    ],
    [
      'duplicate pool key in JSON lines',
      [
        'submit',
        '-f',
        file(
          'dup.jsonl',
          '{"command":"ls","pool":{"name":"a"}}\n{"command":"ls","pool":{"name":"a","cpu":1,"cpu":2}}\n',
        ),
      ],
      1,
      /dup\.jsonl:2: key "pool\.cpu" given twice/,
    ],
    [
      'escaped duplicate key',
      ['submit', '-f', file('dup2.json', '{"command":"ls","\\u0063ommand":"rm","pool":{"name":"a"}}')],
      1,
      /key "command" given twice/,
    ],
    [
      'pool name and poolname differ',
      ['submit', '-f', file('pn.json', '{"command":"ls","pool":{"name":"a","poolname":"b"}}')],
      1,
      /pool\.name and pool\.poolname differ/,
    ],
    [
      '-f with a different -p',
      ['submit', '-f', withCpu, '-p', 'x'],
      1,
      /-p "x" disagrees with the task file's pool\.name "a"/,
    ],
    [
      '-f with a different -c',
      ['submit', '-f', withCpu, '-c', '8'],
      1,
      /-c 8 disagrees with the task file's pool\.cpu 2/,
    ],
    [
      '-f with a different --timeout',
      [
        'submit',
        '-f',
        file('to.json', '{"command":"ls","timeout":"10m","pool":{"name":"a"}}'),
        '--timeout',
        '5m',
      ],
      1,
      /--timeout "5m" disagrees with the task file's timeout "10m"/,
    ],
    [
      'cpu "4" in JSON lines: the line (blank lines counted) and the field',
      [
        'submit',
        '-f',
        file(
          'cpu4.jsonl',
          '{"command":"ls","pool":{"name":"a"}}\n\n{"command":"ls","pool":{"name":"a","cpu":"4"}}\n',
        ),
      ],
      1,
      /^jtm submit: \S*cpu4\.jsonl:3: cpu must be a number, not the string "4": write 4, without quotes$/,
    ],
    [
      'shared "0" in an array: the task and the field',
      [
        'submit',
        '-f',
        file(
          'sh0.json',
          '[{"command":"ls","pool":{"name":"a"}},{"command":"ls","pool":{"name":"a","shared":"0"}}]',
        ),
      ],
      1,
      /^jtm submit: \S*sh0\.json: task 2: shared must be a number, not the string "0": write 0, without quotes$/,
    ],
    // Written into the batch script with the precision lost (adversary 25 F8), exit 0.
    ...(
      [
        ['-N', '99999999999999999999', /nodes \(-N\) must be an integer from 1 to 1000000/],
        ['-m', '999999999999T', /memory \(-m\) must be at most 1000000000 GB$/],
      ] as const
    ).map(([flag, value, message]): Case => [
      `worker -wt dynamic ${flag} ${value}`,
      ['worker', '-wt', 'dynamic', '-cl', 'perlmutter', '-p', 'x', '-t', '00:05:00', flag, value, '-dr'],
      1,
      new RegExp(`^jtm worker: ${message.source}`),
      { JTM_SITE_CONFIG: join(ROOT, 'examples', 'sites.json') },
    ]),
    // A per-workflow pool's name was taken from any path component (adversary 25 F8: pools x_.. and x_-rf).
    ...(
      [
        ['..', /"\.\." from the command's cromwell-executions\/wf\/\.\. is not a workflow id/],
        ['-rf', /"-rf" from the command's cromwell-executions\/wf\/-rf is not a workflow id/],
      ] as const
    ).map(([id, message]): Case => [
      `workflow id ${id} in the call directory`,
      [
        'submit',
        '-cmd',
        `/bin/bash /d/cromwell-executions/wf/${id}/call-a/execution/script`,
        '-p',
        'x',
        '-cl',
        'perlmutter',
        '-t',
        '00:05:00',
        '-s',
        '0',
        '-jid',
        'cromwell_x_y',
      ],
      1,
      new RegExp(`^jtm submit: shared=0: ${message.source}`),
      { JTM_SITE_CONFIG: join(ROOT, 'examples', 'sites.json') },
    ]),
    [
      'pool time 00:00:00 in a file',
      ['submit', '-f', file('t0.json', '{"command":"ls","pool":{"name":"a","time":"00:00:00"}}')],
      1,
      /^jtm submit: time "00:00:00" must be longer than 0$/,
    ],
    ['-t 00:00:00', ['submit', '-cmd', 'ls', '-p', 'x', '-t', '00:00:00'], 1, /^jtm submit: time "00:00:00"/],
    [
      'resource-log --csv --json',
      ['resource-log', '-tid', '1', '--csv', '--json'],
      1,
      /--csv or --json, not both/,
    ],
    [
      'JTM_MAX_COMMAND_BYTES beyond what Linux runs',
      ['submit', '-cmd', 'ls', '-p', 'x'],
      1,
      /JTM_MAX_COMMAND_BYTES=130001 must be an integer from 1 to 130000/,
      { JTM_MAX_COMMAND_BYTES: '130001' },
    ],
    [
      'command longer than JTM_MAX_COMMAND_BYTES',
      [
        'submit',
        '-f',
        file('long.json', JSON.stringify({ command: `echo ${'x'.repeat(200_000)}`, pool: { name: 'a' } })),
      ],
      1,
      /command is 200005 bytes, longer than 130000/,
      { JTM_MAX_COMMAND_BYTES: '130000' },
    ],
    [
      'REDIS_URL db "abc"',
      ['status', '-tid', '1'],
      255,
      /REDIS_URL .*\/abc: database "abc" is not a number/,
      { REDIS_URL: `${inject('redisUrl')}/abc` },
    ],
    // The password was printed in clear, and the line spoke of options (adversary 40 H1).
    [
      'REDIS_URL cut after its @ (no host)',
      ['isalive', '-tid', '1'],
      255,
      /^jtm isalive: REDIS_URL redis:\/\/jtm:\*\*\*@: no host after the @(?!.*s3cr3tPW)/,
      { REDIS_URL: 'redis://jtm:s3cr3tPW@' },
    ],
    [
      'REDIS_URL with a mistyped scheme and a password',
      ['status', '-tid', '1'],
      255,
      /^jtm status: REDIS_URL redis:\/\*\*\*@127\.0\.0\.1:1: not a redis:\/\/(?!.*s3cr3tPW)/,
      { REDIS_URL: 'redis:/jtm:s3cr3tPW@127.0.0.1:1' },
    ],
    [
      'REDIS_URL db -1',
      ['isalive', '-tid', '1'],
      255,
      /database "-1" is not a number/,
      { REDIS_URL: `${inject('redisUrl')}/-1` },
    ],
    [
      'REDIS_URL db 99 (the server has 16)',
      ['status', '-tid', '1'],
      255,
      /the server has no database 99/,
      { REDIS_URL: `${inject('redisUrl')}/99` },
    ],
    [
      'JTM_DASHBOARD_PORT=70000',
      ['dashboard'],
      1,
      /JTM_DASHBOARD_PORT=70000 must be an integer from 0 to 65535/,
      { JTM_DASHBOARD_PORT: '70000' },
    ],
    // Memory of zero or below 1 MB, written with a unit or not, and empty values (every task would end
    // outofresource at once, or the flag would be ignored).
    [
      '--mem-limit 0G',
      ['submit', '-cmd', 'ls', '-p', 'x', '--mem-limit', '0G'],
      1,
      /mem_limit "0G" is below 1 MB/,
    ],
    ['--mem-limit 1K', ['submit', '-cmd', 'ls', '-p', 'x', '--mem-limit', '1K'], 1, /"1K" is below 1 MB/],
    ['--mem-limit 0.0001', ['submit', '-cmd', 'ls', '-p', 'x', '--mem-limit', '0.0001'], 1, /below 1 MB/],
    ['--mem-limit empty', ['submit', '-cmd', 'ls', '-p', 'x', '--mem-limit', ''], 1, /mem_limit is empty/],
    ['-m 0G', ['submit', '-cmd', 'ls', '-p', 'x', '-m', '0G'], 1, /mem "0G" is below 1 MB/],
    [
      'mem_limit "0M" in a task file',
      ['submit', '-f', file('m0.json', '{"command":"ls","mem_limit":"0M","pool":{"name":"a"}}')],
      1,
      /mem_limit "0M" is below 1 MB/,
    ],
    [
      'pool mem "0G" in a task file',
      ['submit', '-f', file('pm0.json', '{"command":"ls","pool":{"name":"a","mem":"0G"}}')],
      1,
      /mem "0G" is below 1 MB/,
    ],
    [
      'worker --task-mem-limit 0G',
      ['worker', '-p', 'x', '--task-mem-limit', '0G'],
      1,
      /--task-mem-limit "0G" is below 1 MB/,
    ],
    // A worker that could never take a task, or would stop at once.
    ['worker --lifetime 0', ['worker', '-p', 'x', '--lifetime', '0'], 1, /--lifetime must be longer than 0/],
    [
      'worker --idle-timeout 0s',
      ['worker', '-p', 'x', '--idle-timeout', '0s'],
      1,
      /--idle-timeout must be longer than 0/,
    ],
    // report: the pool name as every other command, the output path before any record is read.
    [
      'report -p "a;b"',
      ['report', '-p', 'a;b', '-o', join(dir, 'never.html')],
      1,
      /^jtm report: invalid pool name "a;b"/,
    ],
    [
      'report -o /dev/full',
      ['report', '-o', '/dev/full'],
      1,
      /^jtm report: cannot write \/dev\/full: .*ENOSPC/,
    ],
    ['report -o a directory', ['report', '-o', subdirOf(dir)], 1, /^jtm report: cannot write .*EISDIR/],
    // Files every command reads are regular files of a plausible size: /dev/zero took gigabytes, a FIFO hung
    // isalive (adversarial test 3).
    ...(['JTM_REDIS_TLS_CA', 'JTM_REDIS_TLS_CERT', 'JTM_REDIS_TLS_KEY'] as const).flatMap(key =>
      [
        ['/dev/zero', /is not a regular file/],
        [fifo, /is not a regular file/],
      ].map(([path, why]): Case => [
        `${key}=${String(path)}`,
        ['isalive', '-tid', '1'],
        255,
        new RegExp(`^jtm isalive: ${key}=${String(path)} ${(why as RegExp).source}`),
        { REDIS_URL: 'rediss://127.0.0.1:1', [key]: String(path) },
      ]),
    ),
    [
      'JTM_SITE_CONFIG=/dev/zero',
      ['submit', '-cmd', 'true', '-p', 'sz', '-cl', 'test', '-t', '00:01:00'],
      1,
      /^jtm submit: cannot read site config \/dev\/zero: a device \(a regular file is needed\)/,
      { JTM_SITE_CONFIG: '/dev/zero' },
    ],
    [
      'JTM_SITE_CONFIG=a FIFO',
      ['worker', '-wt', 'dynamic', '-cl', 'test', '-p', 'sz', '-t', '00:01:00', '-dr'],
      1,
      /^jtm worker: cannot read site config .*: a pipe \(a regular file is needed\)/,
      { JTM_SITE_CONFIG: fifo },
    ],
    [
      'report -o in a missing directory',
      ['report', '-o', join(dir, 'missing', 'r.html')],
      1,
      /^jtm report: cannot write .*ENOENT/,
    ],
  ];

  it.concurrent.each(cases)('%s → one line naming the problem', async (_n, args, code, message, extra) => {
    const r = await runJtm(args, { ...env, ...(extra ?? {}) }, { timeoutMs: 60_000 });
    // With --json the error is also printed as JSON on stdout.
    if (!args.includes('--json')) expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
    expect(r.code).toBe(code);
  });

  it('a byte that is not UTF-8 in a command, a path or the working directory is refused, not run as another name', async () => {
    // A Latin-1 name (0xE9, `é`) decodes as U+FFFD: the task ran `touch name-\uFFFD.txt`, success, another file.
    /** A task file whose text has the byte 0xE9 (Latin-1 `é`) where `é` stands in `json`. */
    const latin1File = (name: string, json: string): string => {
      const path = join(dir, name);
      const [before, after] = json.split('é') as [string, string];
      writeFileSync(path, Buffer.concat([Buffer.from(before), Buffer.from([0xe9]), Buffer.from(after)]));
      return path;
    };
    const latin1 = latin1File('latin1.json', '{"command":"touch name-é.txt","pool":{"name":"x"}}');
    const inCommand = await runJtm(['submit', '-f', latin1], env);
    expect([inCommand.code, inCommand.stdout]).toEqual([1, '']);
    expect(inCommand.stderr.trim()).toMatch(/^jtm submit: .*command has a byte that is not UTF-8/);
    const outPath = latin1File('latin1-out.json', '{"command":"true","stdout":"o-é","pool":{"name":"x"}}');
    expect((await runJtm(['submit', '-f', outPath], env)).stderr).toMatch(
      /stdout has a byte that is not UTF-8/,
    );
    // A working directory named in Latin-1 (the shell gives the bytes; Node's cwd is text).
    const script = `mkdir -p "$1"/caf$'\\xe9' && cd "$1"/caf$'\\xe9' && exec "$2" "$3" submit -p x -cmd true`;
    const r = spawnSync('bash', ['-c', script, 'bash', dir, process.execPath, BIN], {
      env,
      encoding: 'utf8',
    });
    expect([r.status, r.stdout]).toEqual([1, '']);
    expect(r.stderr.trim()).toMatch(/^jtm submit: the working directory has a byte that is not UTF-8/);
  });

  it('a current directory removed since: one line for the commands that need it, the others run (adversary 12 D8)', () => {
    // It printed Node's "ENOENT: no such file or directory, uv_cwd", and oclif a plain WARNING line on stderr.
    const fromRemoved = (args: string[]) =>
      spawnSync(
        'bash',
        [
          '-c',
          'mkdir -p "$1" && cd "$1" && rmdir "$1" && shift && exec "$@"',
          'bash',
          join(dir, 'removed'),
          process.execPath,
          BIN,
          ...args,
        ],
        {
          env,
          encoding: 'utf8',
        },
      );
    for (const cmd of [['submit', '-p', 'x', '-cmd', 'true'], ['report']]) {
      const r = fromRemoved(cmd);
      expect([cmd[0], r.status, r.stdout, r.stderr]).toEqual([
        cmd[0],
        1,
        '',
        `jtm ${cmd[0]}: the current directory no longer exists (it was removed): cd to one that does\n`,
      ]);
    }
    for (const cmd of [['pools'], ['status', '-tid', '999999999']]) {
      const r = fromRemoved(cmd);
      expect([cmd[0], r.stderr]).toEqual([cmd[0], '']);
    }
  });

  it('left no key in Redis', async () => {
    expect(await ctx().redis.keys(`${env['JTM_PREFIX']}*`)).toEqual([]);
  });
});

describe('what is not ambiguous is accepted as written', () => {
  const env = testEnv();
  const ctx = useTestContext(env);
  const { file } = scratchDir('jtm-ok3-');

  async function submitted(args: string[]): Promise<Record<string, string>> {
    const r = await runJtm(['submit', ...args], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [id] = taskIds(r.stdout);
    return ctx().redis.hgetall(ctx().keys.task(id as number));
  }

  it('a value that starts with "-" (-cmd \'-p x\', --command=-v)', async () => {
    expect((await submitted(['-cmd', '-p x', '-p', 'dash'])).command).toBe('-p x');
    expect((await submitted(['--command=-v', '-p', 'dash'])).command).toBe('-v');
    expect((await submitted(['-p', 'dash', '-cr', '--version'])).command).toBe('--version');
  });

  it('flags fill in what the task file leaves unset, and may repeat what it says', async () => {
    const f = file('t.json', '{"command":"ls","pool":{"name":"a","cpu":2}}');
    const filled = await submitted(['-f', f, '-m', '5', '--timeout', '90s']);
    expect(JSON.parse(filled['pool_spec'] as string)).toMatchObject({ name: 'a', cpu: 2, mem: '5G' });
    const same = await submitted(['-f', f, '-p', 'a', '-c', '2']);
    expect(JSON.parse(same['pool_spec'] as string)).toMatchObject({ name: 'a', cpu: 2 });
    const noName = file('n.json', '{"command":"ls"}');
    expect((await submitted(['-f', noName, '-p', 'b'])).pool).toBe('b');
  });

  it('a global flag before the command, in its legacy spelling (-l debug)', async () => {
    const r = await runJtm(['-l', 'error', 'status', '-tid', '99999'], env);
    expect(r).toMatchObject({ code: 1, stdout: 'invalidtask\n', stderr: '' });
  });

  it('an id only from the command line: a piped stdin is not read, with or without --json (a while-read loop broke)', async () => {
    const [a, b] = taskIds(
      (await runJtm(['submit', '-cmd', 'sleep 60', '-p', 'stdin-ids'], env)).stdout +
        (await runJtm(['submit', '-cmd', 'sleep 60', '-p', 'stdin-ids'], env)).stdout,
    );
    const rest = `${b}\n99999\n`;
    for (const args of [['status'], ['status', '--json'], ['isalive', '--json'], ['resource-log']]) {
      const r = await runJtm([...args, '-tid', String(a)], env, { input: rest });
      expect([args, r.stderr]).toEqual([args, '']);
      expect(r.code).toBe(0);
    }
    // Without an id on the command line, stdin does not supply one.
    const none = await runJtm(['status', '--json'], env, { input: rest });
    expect(none.code).toBe(1);
    expect(none.stdout).not.toContain(String(b));
    // kill --json kills the task named, not refused as "two ids".
    const k = await runJtm(['kill', '-tid', String(a), '--json'], env, { input: rest });
    expect(k.code).toBe(0);
    expect(await ctx().tasks.status(a!)).toBe(-4);
    await runJtm(['kill', '-tid', String(b)], env);
  });
});
