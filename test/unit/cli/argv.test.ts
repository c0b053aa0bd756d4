import { describe, expect, it } from 'vitest';

import { normaliseArgv } from '../../../src/cli/argv.js';

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
});
