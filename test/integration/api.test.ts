import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runProcess } from '../../scripts/lib/run-process.mjs';
import { ROOT, runJtm, startJtm, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { tempDir, testEnv } from '../helpers/env.js';

/**
 * The programmatic API as a user gets it: a project whose node_modules/jtm is this package (as `npm link`
 * or an install makes it), importing 'jtm' — resolved through package.json `exports` to the built dist —
 * against the test Redis, and type-checked against the shipped declarations.
 */
const USER_SCRIPT = `
import { connect, TaskStatus } from 'jtm';

const jtm = await connect(); // REDIS_URL, JTM_PREFIX from the environment, as the CLI
const out = {};
const [one] = await jtm.submit({ command: 'echo hello api', pool: { name: 'api' } });
const [failing, sleeper] = await jtm.submit([{ command: 'exit 3' }, { command: 'sleep 300' }], { pool: 'api' });
out.ids = [one, failing, sleeper];
out.badSubmit = await jtm.submit({ command: ' ' }, { pool: 'api' }).catch(e => [e.name, e.code, e.message]);
const until = async (id, want) => {
  for (let i = 0; i < 600; i++) {
    if ((await jtm.status(id)).status === want) return;
    await new Promise(r => setTimeout(r, 100));
  }
  throw new Error('task ' + id + ' never ' + want);
};
await until(one, 'success');
await until(failing, 'failed');
await until(sleeper, 'running');
out.status = await jtm.status(one);
out.failed = await jtm.details(failing);
out.alive = [await jtm.isAlive(one), await jtm.isAlive(sleeper), await jtm.isAlive(999999)];
out.logs = (await jtm.logs(one)).toString('utf8');
out.resources = Object.keys(await jtm.resourceLog(one));
out.pools = (await jtm.pools()).map(p => [p.name, p.live_workers]);
out.kill = await jtm.kill(sleeper);
out.killUnknown = await jtm.kill(999999).catch(e => [e.name, e.code]);
out.badId = await jtm.status(-1).catch(e => e.code);
out.removed = await jtm.removePool('api');
out.removeUnknown = await jtm.removePool('api').catch(e => e.code);
out.codes = [TaskStatus.success, TaskStatus.terminated];
await jtm.close();
process.stdout.write(JSON.stringify(out));
`;

const USER_TYPES = `
import { connect, JtmError, type KillResult, type StatusAnswer, type TaskInput } from 'jtm';

const task: TaskInput = { command: 'true', pool: { name: 'p', cpu: 2, time: '00:10:00' }, timeout: '5m' };
export async function main(): Promise<void> {
  const jtm = await connect({ env: { REDIS_URL: 'redis://127.0.0.1:1' } });
  const ids: number[] = await jtm.submit([task, task]);
  const s: StatusAnswer = await jtm.status(ids[0] ?? 0);
  const alive: 'yes' | 'no' | 'unknown' = await jtm.isAlive(s.task_id);
  const k: KillResult = await jtm.kill(1, { waitMs: 1000 });
  console.log(alive, k.action, s.status satisfies string);
  // @ts-expect-error a command is a string: the declarations are real, not any
  await jtm.submit({ command: 42 });
  try {
    await jtm.removePool('p', { force: true });
  } catch (err) {
    if (err instanceof JtmError) console.log(err.code);
  }
  await jtm.close();
}
`;

describe('programmatic API (import from "jtm")', () => {
  const env = testEnv();
  let project: string;
  let worker: BackgroundProcess;

  beforeAll(() => {
    project = tempDir('jtm-api-user-');
    mkdirSync(join(project, 'node_modules'));
    symlinkSync(ROOT, join(project, 'node_modules', 'jtm'), 'dir');
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'user', type: 'module', private: true }),
    );
    writeFileSync(join(project, 'user.mjs'), USER_SCRIPT);
    writeFileSync(join(project, 'user.ts'), USER_TYPES);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          typeRoots: [join(ROOT, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['user.ts'],
      }),
    );
    worker = startJtm(['worker', '-p', 'api', '--slots', '2'], env);
  });
  afterAll(async () => {
    await worker?.stop('SIGKILL');
  });

  it('submit one and many, status, details, isalive, logs, resource log, pools, kill, remove-pool', async () => {
    await waitWorkers(env, 'api');
    const r = await runProcess(process.execPath, ['user.mjs'], { env, cwd: project, timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    const [one, failing, sleeper] = out['ids'] as number[];
    expect(new Set([one, failing, sleeper]).size).toBe(3);
    expect(out['badSubmit']).toEqual(['InvalidInputError', 'INVALID_INPUT', 'no command given']);
    expect(out['status']).toEqual({ task_id: one, status: 'success', code: 4, active: false });
    expect(out['failed']).toMatchObject({ id: failing, status_name: 'failed', exit_code: 3, pool: 'api' });
    expect((out['failed'] as { events: unknown[] }).events.length).toBeGreaterThan(2);
    expect(out['alive']).toEqual(['no', 'yes', 'no']);
    expect(out['logs']).toBe('hello api\n');
    expect(out['resources']).toEqual(['task_id', 'resource_log']);
    expect(out['pools']).toEqual([['api', 1]]);
    expect(out['kill']).toMatchObject({ task_id: sleeper, status: 'terminated', action: 'killed' });
    expect(out['killUnknown']).toEqual(['TaskNotFoundError', 'TASK_NOT_FOUND']);
    expect(out['badId']).toBe('INVALID_INPUT');
    expect(out['removed']).toMatchObject({ pool: 'api', terminated: [], killed: [] });
    expect(out['removeUnknown']).toBe('POOL_NOT_FOUND');
    expect(out['codes']).toEqual([4, -4]);
    // The CLI sees what the API did: one store, one implementation.
    expect((await runJtm(['status', '-tid', String(sleeper)], env)).stdout).toBe('terminated\n');
  });

  it('ships typed declarations, resolved through package.json exports', async () => {
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await runProcess(process.execPath, [tsc, '-p', 'tsconfig.json'], {
      env,
      cwd: project,
      timeoutMs: 90_000,
    });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
