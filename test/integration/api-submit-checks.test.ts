import { join, resolve } from 'node:path';

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

describe('API input checks match the CLI (adversary 22 M1, L1, L2, L3)', () => {
  it('a relative cwd is the submitter’s process.cwd() joined with it, as output_dir and stdout are', async () => {
    const jtm = await connect({ env: testEnv() });
    clients.push(jtm);
    const [id] = await jtm.submit({ command: 'pwd', stdout: 'x.out' }, { pool: 'api-checks', cwd: 'rel' });
    const d = await jtm.details(id!);
    expect(d.cwd).toBe(resolve('rel'));
    expect(d.stdout).toBe(resolve('rel', 'x.out'));
    await jtm.kill(id!, { waitMs: 0 });
  });

  it('id 0 is INVALID_INPUT, worded as the CLI words it', async () => {
    const jtm = await connect({ env: testEnv() });
    clients.push(jtm);
    const cli = await runJtm(['status', '-tid', '0'], testEnv());
    expect(cli.stderr).toMatch(/invalid task id "0": expected a positive integer/);
    for (const call of [jtm.status(0), jtm.isAlive(0), jtm.kill(0), jtm.details(0), jtm.logs(0)]) {
      await expect(call).rejects.toThrow(InvalidInputError);
    }
    await expect(jtm.status(0)).rejects.toThrow('invalid task id 0: expected a positive integer');
    await expect(jtm.status('1' as never)).rejects.toThrow(
      'invalid task id "1": expected a positive integer',
    );
    await expect(jtm.kill(1, { waitMs: '5' as never })).rejects.toThrow(InvalidInputError);
  });

  it('a hole in a task array is INVALID_INPUT, and an error names the element', async () => {
    const jtm = await connect({ env: testEnv() });
    clients.push(jtm);
    // eslint-disable-next-line no-sparse-arrays
    const sparse = [{ command: 'true' }, , { command: 'true' }] as { command: string }[];
    await expect(jtm.submit(sparse, { pool: 'api-checks' })).rejects.toThrow(
      'tasks[1]: a task must be a JSON object',
    );
    const list = [{ command: 'true' }, { command: 'true' }, { command: 'true', timeout: 'bogus' }];
    await expect(jtm.submit(list, { pool: 'api-checks' })).rejects.toThrow(/^tasks\[2\]: .*timeout/);
    // One task given alone: the message alone, as the CLI gives it.
    await expect(jtm.submit({ command: 'true', timeout: 'bogus' }, { pool: 'api-checks' })).rejects.toThrow(
      /^invalid timeout/,
    );
  });

  it('a count given as a string is refused as the task file refuses it, and nothing is queued (adversary 25 F8)', async () => {
    const jtm = await connect({ env: testEnv() });
    clients.push(jtm);
    // JavaScript callers (and TypeScript ones through a cast) passed `cpu: '4'`, taken for 4.
    const list = [{ command: 'true' }, { command: 'true', pool: { cpu: '4' as unknown as number } }];
    await expect(jtm.submit(list, { pool: 'api-count' })).rejects.toThrow(
      /^tasks\[1\]: cpu must be a number, not the string "4": write 4, without quotes$/,
    );
    expect(await jtm.pools()).not.toContainEqual(expect.objectContaining({ name: 'api-count' }));
  });

  it('a lone surrogate in a command or cwd, or a NUL in cwd, is refused at submit', async () => {
    const jtm = await connect({ env: testEnv() });
    clients.push(jtm);
    await expect(jtm.submit({ command: "printf '%s' '\uD800'" }, { pool: 'api-checks' })).rejects.toThrow(
      /^command has a lone surrogate/,
    );
    await expect(jtm.submit({ command: 'true' }, { pool: 'api-checks', cwd: '/tmp/\uDC00' })).rejects.toThrow(
      InvalidInputError,
    );
    await expect(jtm.submit({ command: 'true' }, { pool: 'api-checks', cwd: '/tmp\0x' })).rejects.toThrow(
      /NUL/,
    );
    // A well-formed pair (an emoji) is fine.
    const [id] = await jtm.submit({ command: "echo '\u{1F600}'" }, { pool: 'api-checks' });
    await jtm.kill(id!, { waitMs: 0 });
  });
});
