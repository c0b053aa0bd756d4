import { describe, expect, it } from 'vitest';

import { asTyped, normaliseArgv } from '../../../src/cli/argv.js';

describe('argv translation', () => {
  it('maps the original flags, global flags and legacy binaries', () => {
    expect(normaliseArgv('jtm', ['submit', '-cmd', '-n x', '-p', 'a', '-nwpn', '2', '-jid', 'j'])).toEqual([
      'submit',
      '--command=-n x',
      '-p',
      'a',
      '--num_worker_per_node=2',
      '--cromwell_job_id=j',
    ]);
    expect(normaliseArgv('jtm', ['--config=/f', '--debug', 'isalive', '-tid', '5'])).toEqual([
      'isalive',
      '--task_id=5',
      '--config=/f',
      '--debug',
    ]);
    expect(normaliseArgv('jtm', ['--config', '/f', 'status', '-tid=7'])).toEqual([
      'status',
      '--task_id=7',
      '--config',
      '/f',
    ]);
    expect(normaliseArgv('jtm-isalive', ['5'])).toEqual(['isalive', '5']);
    expect(normaliseArgv('jtm-submit', ['-cr', 'ls', '-p', 't'])).toEqual([
      'submit',
      '--command=ls',
      '-p',
      't',
    ]);
    expect(normaliseArgv('jtm-worker', ['-tp', 'small', '-dr'])).toEqual([
      'worker',
      '--pool_name=small',
      '--dry_run',
    ]);
    expect(normaliseArgv('jtm', ['submit', '--', '-tid'])).toEqual(['submit', '--', '-tid']);
  });

  it("maps the original worker's and submit's own spellings by command (adversary 9 J1)", () => {
    // -to and -ct were read as -t o and -c t; the long forms were refused.
    expect(
      normaliseArgv('jtm-worker', ['-tp', 't1', '-zf', '-to', '30', '-ct', '0.2', '-nw', '2', '-J', 'n']),
    ).toEqual([
      'worker',
      '--pool_name=t1',
      '--zerofile',
      '--manager_timeout=30',
      '--clone_time=0.2',
      '--num_workers=2',
      '--job_name=n',
    ]);
    expect(
      normaliseArgv('jtm-worker', [
        '--account',
        'a',
        '--nodes',
        '2',
        '--cpus-per-task',
        '4',
        '--time',
        '01:00:00',
      ]),
    ).toEqual([
      'worker',
      '--charging_account=a',
      '--nnodes=2',
      '--cpus_per_task=4',
      '--job_time=01:00:00',
      // No -tp: the original jtm-worker's default pool (`jtm worker` asks for one).
      '--pool_name=small',
    ]);
    expect(normaliseArgv('jtm', ['worker', '--slots', '2'])).toEqual(['worker', '--slots', '2']);
    expect(normaliseArgv('jtm-submit', ['-cr', 'ls', '--cpu', '4', '--time', '01:00:00'])).toEqual([
      'submit',
      '--command=ls',
      '--ncpu=4',
      '--job_time=01:00:00',
    ]);
    // --timeout is submit's own flag, -to and -ct mean nothing there.
    expect(normaliseArgv('jtm', ['submit', '--timeout', '5s', '-ct', 'x'])).toEqual([
      'submit',
      '--timeout',
      '5s',
      '-ct',
      'x',
    ]);
    // The original's `default` pool is `small` through its legacy binaries only.
    expect(normaliseArgv('jtm-submit', ['-cr', 'ls', '-p', 'default'])).toEqual([
      'submit',
      '--command=ls',
      '-p',
      'small',
    ]);
    expect(normaliseArgv('jtm-worker', ['-tp=default'])).toEqual(['worker', '--pool_name=small']);
    expect(normaliseArgv('jtm', ['submit', '-p', 'default'])).toEqual(['submit', '-p', 'default']);
    expect(normaliseArgv('jtm', ['worker', '--pool_name', 'default'])).toEqual([
      'worker',
      '--pool_name',
      'default',
    ]);
    for (const bin of ['jtm-worker', 'jtm-manager']) {
      expect(normaliseArgv(bin, ['-tp', 'x', '-v'])).toEqual(['--version']);
      expect(normaliseArgv(bin, ['--version'])).toEqual(['--version']);
    }
    expect(normaliseArgv('jtm', ['worker', '--', '-v'])).toEqual(['worker', '--', '-v']);
  });
});

describe('jtm -v and jtm -h', () => {
  it('are the version and the help (adversary 15 P3: oclif answered "command -v not found", exit 2)', () => {
    expect(normaliseArgv('jtm', ['-v'])).toEqual(['--version']);
    expect(normaliseArgv('jtm', ['-h'])).toEqual(['--help']);
    // A command's own -h and -v are its own.
    expect(normaliseArgv('jtm', ['status', '-h'])[0]).toBe('status');
  });
});

describe('asTyped', () => {
  it('names a rewritten flag as typed, whole tokens only, at both ends', () => {
    expect(normaliseArgv('jtm', ['submit', '-tid', '5'])).toContain('--task_id=5');
    expect(asTyped('Nonexistent flag: --task_id=5')).toBe('Nonexistent flag: -tid 5');
    expect(asTyped('Nonexistent flags: --task_id=5, --x')).toBe('Nonexistent flags: -tid 5, --x');
    expect(asTyped('"--task_id=5" is unknown')).toBe('"-tid 5" is unknown');
    // Another word that contains the token, at either end, is left as it is.
    expect(asTyped('Nonexistent flag: --task_id=50')).toBe('Nonexistent flag: --task_id=50');
    expect(asTyped('Nonexistent flag: x--task_id=5')).toBe('Nonexistent flag: x--task_id=5');
    expect(asTyped('echo a--task_id=5 b')).toBe('echo a--task_id=5 b');
  });
});
