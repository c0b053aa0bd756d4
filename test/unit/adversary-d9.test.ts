import { describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/config.js';
import { reportError } from '../../src/cli/error-report.js';
import { DashboardExposedError, InvalidInputError } from '../../src/errors.js';
import { checkExposure, METRICS_ENDPOINT } from '../../src/http/auth.js';
import { stderrFileOf, type TaskRecord } from '../../src/store/task-record.js';

/* D9 of the adversarial test (cosmetic, each a wrong or missing word). */
describe('adversary D9', () => {
  it("keeps a message's own colons (an IPv6 address lost its first ':')", () => {
    for (const host of ['::', '[::]', '::ffff:0.0.0.0']) {
      expect(reportError(new DashboardExposedError(host), 'dashboard').line).toContain(
        `jtm dashboard: refusing to serve the dashboard on ${host} without credentials`,
      );
    }
    // oclif's multi-line parse errors are still joined on one line without a doubled ':'
    expect(reportError(new Error('Parsing --ncpu\n  Expected an integer'), 'x').line).toBe(
      'jtm x: --ncpu: Expected an integer\n',
    );
    expect(reportError(new Error('invalid value:\n  abc'), 'x').line).toBe('jtm x: invalid value: abc\n');
  });

  it("an empty address is invalid, not an exposure; the manager's metrics refusal names the endpoint", () => {
    expect(() => checkExposure('', undefined)).toThrow(InvalidInputError);
    expect(() => checkExposure(' ', { user: 'u', password: 'p' })).toThrow(
      'invalid address " " for the dashboard',
    );
    expect(() => checkExposure('0.0.0.0', undefined, METRICS_ENDPOINT)).toThrow(
      'refusing to serve the metrics endpoint on 0.0.0.0 without credentials',
    );
    expect(() => checkExposure('127.0.0.1', undefined)).not.toThrow();
  });

  it('a blank dashboard user or password is refused, not a credential', () => {
    expect(() => loadConfig({ JTM_DASHBOARD_PASSWORD: ' ' })).toThrow(
      'JTM_DASHBOARD_PASSWORD is blank: set a real value, or leave it empty (unset)',
    );
    expect(() => loadConfig({ JTM_DASHBOARD_USER: '\t' })).toThrow('JTM_DASHBOARD_USER is blank');
    expect(loadConfig({ JTM_DASHBOARD_PASSWORD: '' }).dashboardPassword).toBeUndefined();
    expect(loadConfig({ JTM_DASHBOARD_PASSWORD: ' s3cret' }).dashboardPassword).toBe(' s3cret');
  });

  it('stderrFileOf: the task file, the stored path, or the log-dir neighbour of the stdout file', () => {
    const r = (f: Partial<TaskRecord>): TaskRecord => ({ id: 7, ...f }) as TaskRecord;
    expect(stderrFileOf(r({ stderr: '/w/e', stdout_file: '/l/tasks/7.out' }))).toBe('/w/e');
    expect(stderrFileOf(r({ stdout: '/w/o', stderr_file: '/l/tasks/7.err' }))).toBe('/l/tasks/7.err');
    // Expanded by the worker: the path it wrote, not the one submitted (adversary 36 L1).
    expect(stderrFileOf(r({ stderr: '$HOME/e', stderr_file: '/home/u/e' }))).toBe('/home/u/e');
    expect(stderrFileOf(r({ stdout_file: '/l/tasks/7.out' }))).toBe('/l/tasks/7.err');
    expect(stderrFileOf(r({}))).toBeUndefined();
  });
});
