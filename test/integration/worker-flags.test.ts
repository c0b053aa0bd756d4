import { describe, expect, it } from 'vitest';

import { runJtm } from '../helpers/cli.js';
import { testEnv } from '../helpers/env.js';

describe('worker flags kept for the original JTM', () => {
  it('-r/--show_resource_log is accepted (the original had it) but no longer offered in --help', async () => {
    const env = testEnv();
    const help = await runJtm(['worker', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).not.toContain('show_resource_log');
    // The worker starts with it, finds no task and exits on its idle timeout.
    const r = await runJtm(['worker', '-p', 'flags', '-r', '--idle-timeout', '1s'], env);
    expect(r.code, r.stderr).toBe(0);
  });
});
