import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { dashboardCredentials, loadConfig } from '../../src/config.js';
import { InvalidInputError } from '../../src/errors.js';

describe('loadConfig', () => {
  it('expands ~ in path settings and makes them absolute (.env.example’s ~/.jtm/log made a directory named ~)', () => {
    const c = loadConfig({
      HOME: '/home/op',
      JTM_LOG_DIR: '~/.jtm/log',
      JTM_SITE_CONFIG: '~',
      JTM_REDIS_TLS_CA: 'certs/ca.pem',
    });
    expect(c.logDir).toBe('/home/op/.jtm/log');
    expect(c.siteConfigPath).toBe('/home/op');
    expect(c.redisTlsCa).toBe(join(process.cwd(), 'certs/ca.pem'));
    expect(() => loadConfig({ HOME: '/home/op', JTM_LOG_DIR: '~other/log' })).toThrow(
      'JTM_LOG_DIR=~other/log: only ~ or ~/… (this user’s home) can be expanded'.replace('’', "'"),
    );
  });

  it('a site with another prefix gets a default log dir of its own (adversary 8 I5: task N of two sites wrote one file)', () => {
    expect(loadConfig({ HOME: '/home/op' }).logDir).toBe('/home/op/.jtm/log');
    expect(loadConfig({ HOME: '/home/op', JTM_PREFIX: '{jtm}' }).logDir).toBe('/home/op/.jtm/log');
    expect(loadConfig({ HOME: '/home/op', JTM_PREFIX: '{site-b}' }).logDir).toBe(
      '/home/op/.jtm/log/prefix-{site-b}',
    );
    expect(loadConfig({ HOME: '/home/op', JTM_PREFIX: '..' }).logDir).toBe('/home/op/.jtm/log/prefix-..');
    expect(loadConfig({ HOME: '/home/op', JTM_PREFIX: '{b}', JTM_LOG_DIR: '/l' }).logDir).toBe('/l');
  });

  it("an empty variable leaves the --config file's value (it gave the default: isalive and kill went to another prefix)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'jtm-cfg-'));
    const file = join(dir, 'site.env');
    writeFileSync(file, 'REDIS_URL=redis://10.0.0.5:7000\nJTM_PREFIX={site}\nJTM_KILL_GRACE=7s\n');
    const c = loadConfig({ JTM_PREFIX: '', REDIS_URL: '', JTM_KILL_GRACE: '' }, {}, file);
    expect(c.prefix).toBe('{site}');
    expect(c.redisUrl).toBe('redis://10.0.0.5:7000');
    expect(c.killGraceMs).toBe(7000);
    // A value set in the environment still wins over the file.
    expect(loadConfig({ JTM_PREFIX: '{other}' }, {}, file).prefix).toBe('{other}');
    rmSync(dir, { recursive: true, force: true });
  });

  it('rejects a prefix that is not key-safe', () => {
    expect(() => loadConfig({ JTM_PREFIX: 'a b' })).toThrow(InvalidInputError);
    // One hash tag or none (adversarial test 3: `{x` was accepted, no tag on a cluster).
    for (const prefix of ['{x', 'x}', '{}', '}x{', '{a}{b}', 'a{b'])
      expect(() => loadConfig({ JTM_PREFIX: prefix })).toThrow(/hash tag/);
    for (const prefix of ['{jtm}', 'site-{jtm}', '{jtm}.a', 'jtm'])
      expect(loadConfig({ JTM_PREFIX: prefix }).prefix).toBe(prefix);
    // Basic auth cannot carry a user with a colon: refused, not a dashboard nobody can log in to.
    expect(() => loadConfig({ JTM_DASHBOARD_USER: 'o:ps', JTM_DASHBOARD_PASSWORD: 'p:w' })).toThrow(
      /JTM_DASHBOARD_USER may not hold ":"/,
    );
    expect(loadConfig({ JTM_DASHBOARD_USER: 'ops', JTM_DASHBOARD_PASSWORD: 'p:w' }).dashboardPassword).toBe(
      'p:w',
    );
    expect(() => loadConfig({ JTM_HEARTBEAT_INTERVAL: 'often' })).toThrow(/JTM_HEARTBEAT_INTERVAL/);
    // `10m` for `10ms`: limits held only every 10 minutes (adversary 20 F14).
    expect(() => loadConfig({ JTM_WATCH_INTERVAL: '10m' })).toThrow(
      /invalid JTM_WATCH_INTERVAL "10m": at most/,
    );
    expect(loadConfig({ JTM_WATCH_INTERVAL: '10s' }).watchIntervalMs).toBe(10_000);
    // Not exact beyond 2^53 bytes, and handed to Slurm workers as "1e+23K", which they refused.
    expect(() => loadConfig({ JTM_MEM_AVAILABLE_MARGIN: '99999999999T' })).toThrow(/too large/);
    expect(loadConfig({ JTM_MEM_AVAILABLE_MARGIN: '8191T' }).memAvailableMarginBytes).toBe(8191 * 2 ** 40);
  });

  it('refuses REDIS_URL and its alias JTM_REDIS_URL set to different URLs (either was silently preferred)', () => {
    const a = 'redis://127.0.0.1:6380';
    const b = 'redis://127.0.0.1:6381';
    expect(() => loadConfig({ REDIS_URL: a, JTM_REDIS_URL: b })).toThrow(
      /REDIS_URL and JTM_REDIS_URL are both set, to different URLs/,
    );
    expect(loadConfig({ REDIS_URL: a, JTM_REDIS_URL: a }).redisUrl).toBe(a);
    expect(loadConfig({ JTM_REDIS_URL: b }).redisUrl).toBe(b);
    // Blanks around it, as around every other setting (adversary 15 P11).
    expect(loadConfig({ REDIS_URL: ` ${a} ` }).redisUrl).toBe(a);
    expect(loadConfig({ REDIS_URL: ` ${a}`, JTM_REDIS_URL: `${a}\t` }).redisUrl).toBe(a);
  });

  it('says that worker and manager need at least 3 missed beats when JTM_MISSED_BEATS is not an integer', () => {
    expect(() => loadConfig({ JTM_MISSED_BEATS: '2.5' })).toThrow(
      'JTM_MISSED_BEATS=2.5 must be an integer from 1 to 1000 (a worker and a manager need at least 3)',
    );
  });

  // Adversary 34 L5, L6: a user without a password served a loopback dashboard to everyone without a word; a metrics
  // port of 99999 passed the configuration and failed only when the manager listened.
  it('dashboard credentials go in pairs; JTM_METRICS_PORT is a port', () => {
    const creds = (vars: Record<string, string>) => dashboardCredentials(loadConfig(vars));
    expect(creds({})).toBeUndefined();
    expect(creds({ JTM_DASHBOARD_USER: 'ops', JTM_DASHBOARD_PASSWORD: 'pw' })).toEqual({
      user: 'ops',
      password: 'pw',
    });
    expect(() => creds({ JTM_DASHBOARD_USER: 'ops' })).toThrow(
      'JTM_DASHBOARD_USER is set without JTM_DASHBOARD_PASSWORD: set both (every route then asks for them), or neither',
    );
    expect(() => creds({ JTM_DASHBOARD_PASSWORD: 'pw' })).toThrow(
      /^JTM_DASHBOARD_PASSWORD is set without JTM_DASHBOARD_USER/,
    );
    expect(() => loadConfig({ JTM_METRICS_PORT: '99999' })).toThrow(
      'JTM_METRICS_PORT=99999 must be an integer from 0 to 65535',
    );
    expect(loadConfig({ JTM_METRICS_PORT: '9464' }).metricsPort).toBe(9464);
  });

  // Adversary 34 M6: JTM_TASK_RETENTION=0 deleted every result the moment its task ended (status invalidtask).
  it('refuses a JTM_TASK_RETENTION below one hour in one line, and takes one hour or more', () => {
    for (const v of ['0', '0s', '1ms', '59m', '3599999ms']) {
      expect(() => loadConfig({ JTM_TASK_RETENTION: v })).toThrow(InvalidInputError);
      expect(() => loadConfig({ JTM_TASK_RETENTION: v })).toThrow(
        `JTM_TASK_RETENTION=${v} must be at least 3600 s (1h): a task's result`,
      );
    }
    expect(loadConfig({ JTM_TASK_RETENTION: '1h' }).taskRetentionMs).toBe(3_600_000);
    expect(loadConfig({}).taskRetentionMs).toBe(7 * 24 * 3_600_000);
  });

  // Each provisioned worker gets it as --idle-timeout, which refuses 0: every allocation's worker failed at once.
  it('refuses JTM_SLURM_IDLE_TIMEOUT=0; 0 stays accepted where it means "none" or "at once"', () => {
    expect(() => loadConfig({ JTM_SLURM_IDLE_TIMEOUT: '0' })).toThrow(
      'JTM_SLURM_IDLE_TIMEOUT=0 must be longer than 0',
    );
    const zero = loadConfig({
      JTM_POOL_IDLE: '0',
      JTM_KILL_GRACE: '0',
      JTM_TASK_RETRIES: '0',
      JTM_LEFTOVER_GRACE: '0',
      JTM_SUBMIT_RETRY: '0',
      JTM_SLURM_WARNING: '0',
    });
    expect([zero.poolIdleMs, zero.killGraceMs, zero.taskRetries, zero.leftoverGraceMs]).toEqual([0, 0, 0, 0]);
  });
});
