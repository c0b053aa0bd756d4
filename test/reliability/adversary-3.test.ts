import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { runJtm } from '../helpers/cli.js';
import { tempDir, testEnv } from '../helpers/env.js';

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
      ['isalive', '-tid', '1', '--config', file('dup.env', 'JTM_PREFIX={a}\nJTM_PREFIX={b}\n')],
      'dup.env:2: JTM_PREFIX given twice',
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
