// `jtm manager`'s flags over the configuration (src/cli/manager-cli.ts): what the command passes to runManager,
// and what it refuses before Redis is reached.
import { describe, expect, it } from 'vitest';

import { managerSettings } from '../../../src/cli/manager-cli.js';
import { loadConfig } from '../../../src/config.js';

const flags = { show_resource_log: false, dashboard: false };

describe('manager settings', () => {
  it('the configuration by default: no dashboard, no metrics', () => {
    const config = loadConfig({ JTM_SWEEP_INTERVAL: '7s' });
    const s = managerSettings(flags, config);
    expect(s.opts).toEqual({ sweepIntervalMs: 7000, showResourceLog: false });
    expect(s.dashboard).toBeUndefined();
    expect(s.metrics).toBeUndefined();
    expect(s.config.logDir).toBe(config.logDir);
  });

  it('flags override the configuration; both endpoints share the credentials', () => {
    const config = loadConfig({
      JTM_METRICS_PORT: '9100',
      JTM_DASHBOARD_USER: 'ops',
      JTM_DASHBOARD_PASSWORD: 'pw',
    });
    const s = managerSettings(
      {
        show_resource_log: true,
        dashboard: true,
        'sweep-interval': '2s',
        log_dir: '/tmp/mgr-logs',
        'dashboard-host': '0.0.0.0',
        'dashboard-port': 3999,
        'metrics-host': '0.0.0.0',
      },
      config,
    );
    expect(s.opts).toEqual({ sweepIntervalMs: 2000, showResourceLog: true });
    expect(s.config).toMatchObject({ sweepIntervalMs: 2000, logDir: '/tmp/mgr-logs' });
    const credentials = { user: 'ops', password: 'pw' };
    expect(s.dashboard).toEqual({ host: '0.0.0.0', port: 3999, allowActions: false, credentials });
    expect(s.metrics).toEqual({ host: '0.0.0.0', port: 9100, credentials });
  });

  it('refuses an exposed endpoint without credentials, a bad interval and a lease workers cannot keep', () => {
    const config = loadConfig({});
    expect(() => managerSettings({ ...flags, dashboard: true, 'dashboard-host': '0.0.0.0' }, config)).toThrow(
      /without credentials/,
    );
    expect(() =>
      managerSettings({ ...flags, 'metrics-port': 9100, 'metrics-host': '10.1.2.3' }, config),
    ).toThrow(/without credentials/);
    expect(() => managerSettings({ ...flags, 'sweep-interval': 'soon' }, config)).toThrow(/--sweep-interval/);
    expect(() => managerSettings(flags, loadConfig({ JTM_MISSED_BEATS: '2' }))).toThrow(/JTM_MISSED_BEATS/);
  });
});
