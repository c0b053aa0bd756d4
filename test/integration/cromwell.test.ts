import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { JTM_RC_CODES, writeRcForEndedTask } from '../../src/tasks/rc-file.js';
import { loadBackendConfig, type BackendConfig } from '../cromwell/backend-config.js';
import { CromwellEmulator, installJtmShims, type Call, type CallSpec } from '../cromwell/emulator.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { ROOT, runJtm, startJtm, taskIds, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';

const CONF = loadBackendConfig(join(ROOT, 'examples', 'cromwell', 'jtm.conf'));
const SHIM_PATH = installJtmShims(tempDir('jtm-shims-'));

/**
 * One workflow's worth of Cromwell state: its root, id and the pool JTM should use. The stanza's defaults
 * (`cluster = "local"`, `shared = 0`) run a call on the pool it names (a per-workflow pool is for pools the
 * manager provisions: adversary 9 J3); each workflow here names its own (`poolname`), as its worker's.
 */
function workflow(name = 'wf'): {
  root: string;
  id: string;
  pool: string;
  spec: (call: string, command: string) => CallSpec;
} {
  const root = join(tempDir('jtm-cromwell-'), 'cromwell-executions');
  const id = randomUUID();
  return {
    root,
    id,
    pool: `small-${id.slice(0, 8)}`,
    spec: (callName, command) => ({
      root,
      workflowName: name,
      workflowId: id,
      callName,
      command,
      runtime: { poolname: `small-${id.slice(0, 8)}` },
    }),
  };
}

async function startWorkerOn(
  env: Record<string, string>,
  pool: string,
  slots = 4,
): Promise<BackgroundProcess> {
  const w = startJtm(['worker', '-p', pool, '--slots', String(slots)], env);
  await waitWorkers(env, pool, 1, 30_000);
  return w;
}

async function waitStatus(ctx: JtmContext, id: number, want: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => (await ctx.tasks.get(id))?.status_name === want,
    `task ${id} ${want}`,
    timeoutMs,
    100,
  );
}

// The four groups below are independent (each its own prefix, workflow, pool and processes) and mostly wait
// for tasks, rc files and lock expiries, so they run at the same time (describe.concurrent); within a group
// the tests stay in order where they share processes (it.sequential). The tests of the first group share one
// 4-slot worker and may overlap: each has its own call, files and task.
describe.concurrent('Cromwell through examples/cromwell/jtm.conf', () => {
  const env = testEnv({ JTM_TASK_RETRIES: '0' });
  const cromwellEnv: Record<string, string> = { ...env, PATH: SHIM_PATH };
  const wf = workflow();
  const cromwell = new CromwellEmulator(CONF, cromwellEnv, 2);
  let worker: BackgroundProcess;
  let ctx: JtmContext;

  beforeAll(async () => {
    ctx = await openTestContext(env);
    worker = await startWorkerOn(env, wf.pool);
  });
  afterAll(async () => {
    await worker.stop();
    await closeContext(ctx);
  });

  it('the stanza declares what Cromwell needs', () => {
    expect([...CONF.runtimeAttributes.keys()]).toEqual(
      expect.arrayContaining([
        'time',
        'cpu',
        'memory_gb',
        'cluster',
        'poolname',
        'node',
        'nwpn',
        'shared',
        'constraint',
        'qos',
        'account',
        'partition',
      ]),
    );
    expect(CONF.jobIdRegex.source).toBe('JTM task ID (\\d+)');
    expect(CONF.exitCodeTimeoutSeconds).toBeGreaterThan(0);
    expect(CONF.submitDocker).toContain('--rc-file');
  });

  it('success: rc 0 from the script, outputs teed, on the pool it names (local: no per-workflow pool)', async () => {
    const call = cromwell.prepare(wf.spec('hello', 'echo hello; echo warn >&2'));
    const jobId = await cromwell.submit(call);
    const result = await cromwell.waitForRc(call, jobId, 60_000);
    expect(result).toMatchObject({ rc: 0, assumedDead: false });
    expect(result.checks.every(c => c.code === 0)).toBe(true);
    await waitFor(() => readFileSync(join(call.execution, 'stdout'), 'utf8') === 'hello\n', 'stdout teed');
    expect(readFileSync(join(call.execution, 'stderr'), 'utf8')).toBe('warn\n');
    await waitStatus(ctx, Number(jobId), 'success');
    expect(await ctx.tasks.get(Number(jobId))).toMatchObject({
      pool: wf.pool,
      rc_file: call.rc,
      cromwell_job_id: call.jobName,
      pool_spec: { name: wf.pool, shared: 0, cluster: 'local', cpu: 1, mem: '5G', time: '00:30:00' },
    });
    const alive = await cromwell.checkAlive(call, jobId);
    expect(alive).toEqual({ code: 1, stdout: 'no' });
  });

  it('a user command that exits 3 gives rc 3', async () => {
    const call = cromwell.prepare(wf.spec('fails', 'echo about to fail; exit 3'));
    const jobId = await cromwell.submit(call);
    expect((await cromwell.waitForRc(call, jobId, 60_000)).rc).toBe(3);
    // JTM runs Cromwell's script, which itself ends well after writing rc: the call's code is in rc.
    await waitStatus(ctx, Number(jobId), 'success');
  });

  it('abort while running: Cromwell writes 143, jtm kill ends the tree, rc stays 143', async () => {
    const started = join(wf.root, 'abort-started');
    const call = cromwell.prepare(wf.spec('abort', `touch ${started}; sleep 120`));
    const jobId = await cromwell.submit(call);
    await waitFor(() => existsSync(started), 'command running');
    await cromwell.abort(call, jobId);
    await waitStatus(ctx, Number(jobId), 'terminated');
    expect(readFileSync(call.rc, 'utf8').trim()).toBe('143');
    expect(readFileSync(join(call.execution, 'stdout.kill'), 'utf8')).toBe('');
    expect((await cromwell.checkAlive(call, jobId)).code).not.toBe(0);
    expect((await ctx.tasks.get(Number(jobId)))?.kill_requested).toBe(true);
  });

  it("the original's templates keep working: jtm submit -cmd … --shared 0, jtm-submit -cr, isalive/kill -tid", async () => {
    const cfg = join(wf.root, 'jtm.env');
    writeFileSync(cfg, `JTM_PREFIX=${env['JTM_PREFIX']}\nREDIS_URL=${env['REDIS_URL']}\n`);
    const { JTM_PREFIX: _p, REDIS_URL: _r, ...bare } = cromwellEnv;
    void [_p, _r];
    const jaws: BackendConfig = {
      ...CONF,
      submit: `jtm --config=${cfg} submit -cmd '/bin/bash \${script}' -cl \${cluster} -t \${time} -c \${cpu} -m \${memory_gb} -p \${poolname} -N \${node} -nwpn \${nwpn} -jid \${job_name} --shared \${shared}`,
      checkAlive: `jtm --config=${cfg} isalive -tid \${job_id}`,
      kill: `jtm --config=${cfg} kill -tid \${job_id}`,
    };
    const older: BackendConfig = {
      ...CONF,
      submit: `jtm-submit -cr '/bin/bash \${script}' -p \${poolname} -jid \${job_name} --shared \${shared} --config ${cfg}`,
      checkAlive: `jtm-isalive \${job_id} --config ${cfg}`,
      kill: `jtm-kill \${job_id} --config ${cfg}`,
    };
    for (const conf of [jaws, older]) {
      const emu = new CromwellEmulator(conf, bare, 1);
      const ok = emu.prepare(wf.spec(`legacy-${randomUUID().slice(0, 4)}`, 'exit 5'));
      const okId = await emu.submit(ok);
      expect((await emu.waitForRc(ok, okId, 60_000)).rc).toBe(5);
      expect((await ctx.tasks.get(Number(okId)))?.pool).toBe(wf.pool);
      // rc_file was derived from `/bin/bash <call dir>/execution/script`.
      expect((await ctx.tasks.get(Number(okId)))?.rc_file).toBe(ok.rc);
      const started = join(wf.root, `legacy-started-${okId}`);
      const long = emu.prepare(wf.spec(`legacy-long-${okId}`, `touch ${started}; sleep 120`));
      const longId = await emu.submit(long);
      await waitFor(() => existsSync(started), 'legacy command running');
      expect(await emu.checkAlive(long, longId)).toEqual({ code: 0, stdout: 'yes' });
      await emu.abort(long, longId);
      await waitStatus(ctx, Number(longId), 'terminated');
      expect(readFileSync(long.rc, 'utf8').trim()).toBe('143');
    }
  });

  it('a JTM timeout writes rc 124; a command that cannot start writes 126, one that failed before the script its code; an existing rc is never replaced', async () => {
    const t = cromwell.prepare(wf.spec('timeout', 'sleep 120'));
    const r = await runJtm(
      ['submit', '-cmd', `/bin/bash ${t.script}`, '-p', wf.pool, '--timeout', '2s'],
      env,
    );
    const [tid] = taskIds(r.stdout);
    await waitStatus(ctx, tid!, 'timeout');
    await waitFor(() => existsSync(t.rc), 'rc of the timed-out task');
    expect(readFileSync(t.rc, 'utf8').trim()).toBe(String(JTM_RC_CODES.timeout));

    const c = cromwell.prepare(wf.spec('nostart', 'true'));
    const file = join(wf.root, 'nostart.json');
    writeFileSync(
      file,
      JSON.stringify({
        command: `/bin/bash ${c.script}`,
        output_dir: '/nonexistent/dir',
        pool: { name: wf.pool },
      }),
    );
    const [cid] = taskIds((await runJtm(['submit', '-f', file], env)).stdout);
    await waitStatus(ctx, cid!, 'failed');
    await waitFor(() => existsSync(c.rc), 'rc of the task that could not start');
    expect(readFileSync(c.rc, 'utf8').trim()).toBe(String(JTM_RC_CODES.cannotStart));

    // A wrapper that fails before the script runs (docker run: no image, no daemon; exit 125) gets its own code,
    // the rc path derived from the script among its words (adversary 9 J10: no rc, Cromwell waited 10 min).
    const d = cromwell.prepare(wf.spec('wrapper-fails', 'true'));
    const dr = await runJtm(['submit', '-cmd', `/bin/sh -c 'exit 125' ${d.script}`, '-p', wf.pool], env);
    const [did] = taskIds(dr.stdout);
    await waitStatus(ctx, did!, 'failed');
    await waitFor(() => existsSync(d.rc), 'rc of the task whose wrapper failed');
    expect(readFileSync(d.rc, 'utf8').trim()).toBe('125');

    // A command that writes a message of bash's form to the pty it can reach (its parent's, the pty host's) and
    // exits 125 is a command that exited 125, not one whose output file could not be opened: it got that text as
    // its reason, no exit code, and rc 126 (adversary 36 M1). By the bash preamble and by the wrapper's simple path.
    const forged = 'bash: /zz: No space left on device';
    const script = join(wf.root, 'forge.sh');
    writeFileSync(
      script,
      `for f in /proc/$PPID/fd/2 /proc/$PPID/fd/1; do echo '${forged}' > $f 2>/dev/null; done; echo out; exit 125\n`,
    );
    for (const [name, command] of [
      ['preamble', `for f in /proc/$PPID/fd/2; do echo '${forged}' > $f; done; echo out; exit 125`],
      ['simple', `/bin/bash ${script}`],
    ] as const) {
      const rc = join(wf.root, `forged-${name}.rc`);
      const fr = await runJtm(['submit', '--rc-file', rc, '-cmd', command, '-p', wf.pool], env);
      const [fid] = taskIds(fr.stdout);
      await waitStatus(ctx, fid!, 'failed');
      expect(await ctx.tasks.get(fid!), name).toMatchObject({ exit_code: 125, reason: 'exit code 125' });
      await waitFor(() => existsSync(rc), `rc of the ${name} task`);
      expect(readFileSync(rc, 'utf8').trim(), name).toBe('125');
    }

    // The script's own rc wins over anything JTM would write, even for a status that calls for one.
    const record = (await ctx.tasks.get(tid!))!;
    writeFileSync(t.rc, '0\n');
    expect(await writeRcForEndedTask(ctx, record)).toBeUndefined();
    expect(readFileSync(t.rc, 'utf8')).toBe('0\n');
    // A user kill writes nothing.
    const killed = {
      ...record,
      status: -4,
      status_name: 'terminated' as const,
      kill_requested: true,
      rc_file: join(wf.root, 'never'),
    };
    expect(await writeRcForEndedTask(ctx, killed)).toBeUndefined();
    expect(existsSync(join(wf.root, 'never'))).toBe(false);
    // A directory where rc should go is left as it is (logged as in the way, not as the script's rc).
    const dirRc = join(wf.root, 'rc-dir');
    mkdirSync(dirRc);
    expect(await writeRcForEndedTask(ctx, { ...record, rc_file: dirRc })).toBeUndefined();
    expect(statSync(dirRc).isDirectory()).toBe(true);
    // Either way the record says that no rc was written, and why (adversary 12 D4: only a log line said so, on
    // the host of whichever process ended the task).
    expect((await ctx.tasks.get(tid!))?.rc_error).toBe(
      `could not write ${dirRc}: its path is taken by something other than a file`,
    );
    const gone = join(wf.root, 'gone', 'rc');
    expect(await writeRcForEndedTask(ctx, { ...record, rc_file: gone })).toBeUndefined();
    expect((await ctx.tasks.get(tid!))?.rc_error).toMatch(
      new RegExp(`^could not write ${gone} as user \\S+: ENOENT \\(no such file or directory\\)$`),
    );
    const events = await ctx.tasks.events(tid!);
    expect(events.at(-1)?.reason).toMatch(/^rc not written: could not write .*gone\/rc as user \S+: ENOENT/);
    expect(events.at(-1)?.to).toBe(events.at(-1)?.from);
  });
});

describe.concurrent('Cromwell while Redis is unreachable from its host', () => {
  const env = testEnv({ JTM_ISALIVE_RETRY: '1s', JTM_CONNECT_TIMEOUT: '1s' });
  const wf = workflow();
  const target = new URL(env['REDIS_URL']!);
  const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port) });
  let worker: BackgroundProcess;

  beforeAll(async () => {
    await proxy.up();
    worker = await startWorkerOn(env, wf.pool, 1);
  });
  afterAll(async () => {
    await worker.stop();
    await proxy.down();
  });

  it('check-alive answers unknown (exit 0) during the outage: the job is not declared dead', async () => {
    const cromwell = new CromwellEmulator(CONF, { ...env, PATH: SHIM_PATH, REDIS_URL: proxy.url }, 1);
    const started = join(wf.root, 'started');
    const release = join(wf.root, 'release');
    const call = cromwell.prepare(
      wf.spec('outage', `touch ${started}; while [ ! -e ${release} ]; do sleep 0.2; done; echo done`),
    );
    const jobId = await cromwell.submit(call);
    await waitFor(() => existsSync(started), 'command running');
    let unknown = 0;
    let aliveAfter = 0;
    let outage = true;
    const done = cromwell.waitForRc(call, jobId, 90_000, c => {
      if (outage && c.stdout === 'unknown') unknown++;
      if (!outage && c.stdout === 'yes') aliveAfter++;
    });
    await proxy.down();
    await waitFor(() => unknown >= 2, 'two check-alive calls during the outage', 60_000);
    await proxy.up();
    outage = false;
    await waitFor(() => aliveAfter >= 1, 'check-alive after the outage', 60_000);
    writeFileSync(release, '');
    const result = await done;
    expect(result).toMatchObject({ rc: 0, assumedDead: false });
    expect(result.checks.every(c => c.code === 0)).toBe(true);
  });
});

describe('submit while Redis is unreachable for a moment', () => {
  // Adversary 7 H9: a Redis restart of 5 s failed every call Cromwell submitted in it (exit 255).
  const env = testEnv({ JTM_CONNECT_TIMEOUT: '1s', JTM_SUBMIT_RETRY: '20s' });
  const target = new URL(env['REDIS_URL']!);
  const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port) });
  afterAll(async () => {
    await proxy.down();
  });

  it('is retried until Redis answers and prints its id once; without a retry it fails (255)', async () => {
    await proxy.up();
    const via = { ...env, REDIS_URL: proxy.url };
    await proxy.down();
    const pending = runJtm(['submit', '-p', 'sretry', '-cmd', 'true'], via);
    await new Promise(r => setTimeout(r, 2500));
    await proxy.up();
    const r = await pending;
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(taskIds(r.stdout)).toHaveLength(1);
    await proxy.down();
    const once = await runJtm(['submit', '-p', 'sretry', '-cmd', 'true'], { ...via, JTM_SUBMIT_RETRY: '0s' });
    expect(once.code).toBe(255);
    // A refusal is not an outage: a wrong user or password fails at once, whatever the retry.
    const refused = new URL(env['REDIS_URL']!);
    refused.username = 'nobody';
    refused.password = 'wrong';
    const t0 = Date.now();
    const denied = await runJtm(['submit', '-p', 'sretry', '-cmd', 'true'], {
      ...env,
      REDIS_URL: refused.toString(),
    });
    expect([denied.code, denied.stderr]).toEqual([255, expect.stringMatching(/refused JTM \(WRONGPASS/)]);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

/**
 * A node dies under a running call of `wf`: the task's processes stop first (so that none of them writes rc
 * on the way down), then the worker is SIGKILLed, then the processes. Returns the call's job id.
 */
async function nodeDiesUnderCall(
  ctx: JtmContext,
  cromwell: CromwellEmulator,
  call: Call,
  worker: BackgroundProcess,
  started: string,
): Promise<number> {
  const jobId = Number(await cromwell.submit(call));
  await waitFor(() => existsSync(started), 'command running');
  const pid = await waitFor(async () => (await ctx.tasks.get(jobId))?.pid, 'task pid');
  process.kill(-pid, 'SIGSTOP');
  worker.child.kill('SIGKILL');
  await worker.exited;
  process.kill(-pid, 'SIGKILL');
  return jobId;
}

describe.concurrent('a worker that dies with its task and no retries left', () => {
  // A short job lock: BullMQ hands a dead worker's job on once its lock lapses (30 s by default).
  const env = testEnv({ JTM_TASK_RETRIES: '0', JTM_LOCK_DURATION: '5s', JTM_STALLED_INTERVAL: '1s' });
  let ctx: JtmContext;
  const procs: BackgroundProcess[] = [];

  beforeAll(async () => {
    ctx = await openTestContext(env);
  });
  afterAll(async () => {
    await Promise.all(procs.map(p => p.stop('SIGKILL')));
    await closeContext(ctx);
  });

  // In order: the second test's manager would otherwise end the first test's task before the takeover.
  it.sequential(
    'ends lostconnection when another worker takes the task over, and JTM writes rc 75',
    async () => {
      const wf = workflow();
      const first = await startWorkerOn(env, wf.pool, 1);
      procs.push(first);
      const cromwell = new CromwellEmulator(CONF, { ...env, PATH: SHIM_PATH }, 2);
      const started = join(wf.root, 'started');
      const call = cromwell.prepare(wf.spec('lost', `touch ${started}; sleep 300`));
      const jobId = await nodeDiesUnderCall(ctx, cromwell, call, first, started);
      procs.push(await startWorkerOn(env, wf.pool, 1));
      // BullMQ hands the stalled job to the second worker once the first one's lock expires (lock + stalled check).
      const result = await cromwell.waitForRc(call, String(jobId), 120_000);
      expect(result).toMatchObject({ rc: JTM_RC_CODES.lostconnection, assumedDead: false });
      expect(await ctx.tasks.get(jobId)).toMatchObject({ status_name: 'lostconnection' });
    },
  );

  it.sequential(
    'with no other worker the manager ends it lostconnection, so Cromwell does not wait for check-alive',
    async () => {
      // Its own pool: the first test's second worker must not take this task over.
      const wf = workflow();
      const worker = await startWorkerOn(env, wf.pool, 1);
      procs.push(worker, startJtm(['manager'], env));
      // A long exit-code-timeout: the rc must come from JTM, not from Cromwell's own "assume dead" path.
      const cromwell = new CromwellEmulator(CONF, { ...env, PATH: SHIM_PATH }, 600);
      const started = join(wf.root, 'started-m');
      const call = cromwell.prepare(wf.spec('lost-m', `touch ${started}; sleep 300`));
      const jobId = await nodeDiesUnderCall(ctx, cromwell, call, worker, started);
      // The heartbeat expires (3 × 500 ms here) and the next sweep (1 s) recovers the task.
      const result = await cromwell.waitForRc(call, String(jobId), 60_000);
      expect(result).toMatchObject({ rc: JTM_RC_CODES.lostconnection, assumedDead: false });
      expect(await ctx.tasks.get(jobId)).toMatchObject({ status_name: 'lostconnection' });
    },
  );
});

// 60 calls (200 before): three submitters at a time into one fresh per-workflow pool still race on the
// pool's registration, the id counter and the worker's 8 slots for many rounds; 140 more cold submits added
// a minute of CPU and nothing the first 60 do not exercise.
describe.concurrent('60 calls at Cromwell submit rate', () => {
  const CALLS = 60;
  const env = testEnv();
  const wf = workflow('many');
  let worker: BackgroundProcess;

  beforeAll(async () => {
    worker = await startWorkerOn(env, wf.pool, 8);
  });
  afterAll(async () => {
    await worker.stop();
  });

  it('all finish with the rc of their command', async () => {
    const cromwell = new CromwellEmulator(CONF, { ...env, PATH: SHIM_PATH }, null, 500);
    const calls = Array.from({ length: CALLS }, (_, i) =>
      cromwell.prepare(wf.spec(`c${i}`, `exit ${i % 4}`)),
    );
    // Cromwell runs submit synchronously per job; a few at a time is its default throughput here.
    let next = 0;
    const jobIds: string[] = [];
    await Promise.all(
      Array.from({ length: 3 }, async () => {
        for (let i = next++; i < calls.length; i = next++) jobIds[i] = await cromwell.submit(calls[i]!);
      }),
    );
    expect(new Set(jobIds).size).toBe(CALLS);
    await waitFor(() => calls.every(c => existsSync(c.rc)), 'every rc', 240_000, 500);
    calls.forEach((c, i) => expect(readFileSync(c.rc, 'utf8').trim()).toBe(String(i % 4)));
  }, 400_000);
});
