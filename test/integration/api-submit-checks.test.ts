import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { connect, InvalidInputError, type JtmClient } from '../../src/index.js';
import { ROOT, runJtm } from '../helpers/cli.js';
import { testEnv } from '../helpers/env.js';

const clients: JtmClient[] = [];
afterAll(async () => {
  await Promise.all(clients.map(c => c.close()));
});

describe('submit-time checks run for API callers as for the CLI', () => {
  it('a task whose time limit cannot fit in its dynamic pool, or an unknown cluster, is refused by both', async () => {
    const env = testEnv({
      JTM_SITE_CONFIG: join(ROOT, 'examples', 'sites.json'),
      JTM_SLURM_TIME_SLACK: '1m',
    });
    const cli = await runJtm(
      ['submit', '-cl', 'test', '-cmd', 'true', '-p', 'short', '-t', '00:01:00', '--timeout', '10m'],
      env,
    );
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/does not fit in the allocations of pool short/);

    const jtm = await connect({ env });
    clients.push(jtm);
    const tooLong = {
      command: 'true',
      pool: { name: 'short', cluster: 'test', time: '00:01:00' },
      timeout: '10m',
    };
    await expect(jtm.submit(tooLong)).rejects.toThrow(InvalidInputError);
    await expect(jtm.submit(tooLong)).rejects.toThrow(/does not fit in the allocations of pool short/);
    await expect(
      jtm.submit({ command: 'true', pool: { name: 'p', cluster: 'nosuch', time: '00:10:00' } }),
    ).rejects.toThrow(/unknown cluster "nosuch"/);
    // Refused before anything was written: no task id was ever taken.
    const probe = await runJtm(['status', '-tid', '1'], env);
    expect(probe.stdout.trim()).not.toMatch(/pending|queued|running/);
  });
});
