import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  runJtm,
  startJtm,
  statusOf,
  taskIds,
  type BackgroundProcess,
  waitStatusShown,
  waitWorkers,
} from '../helpers/cli.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { submitOne } from '../helpers/submit.js';
import { makePki, redisCli, startPlainRedis, startTlsRedis, type Pki, type Server } from './servers.js';

const PASSWORD = 'Zq9-s3cret-PW';

/** submit → worker → status over `env`, and what the task saw of its environment. */
async function coreFlow(
  env: Record<string, string>,
  pool: string,
): Promise<{ taskEnv: string; worker: string }> {
  const work = tempDir('jtm-sec-');
  const worker: BackgroundProcess = startJtm(['worker', '-p', pool, '--slots', '2'], {
    ...env,
    JTM_LOG_LEVEL: 'debug',
    SITE_SETTING: 'from-the-worker',
    JTM_DASHBOARD_PASSWORD: 'dash-secret',
  });
  try {
    await waitWorkers(env, pool);
    const r = await runJtm(
      ['submit', '-cmd', `env > ${work}/env.txt; id -u >> ${work}/env.txt`, '-p', pool],
      env,
    );
    expect(r.code).toBe(0);
    const [id] = taskIds(r.stdout);
    await waitStatusShown(env, id!, 'success');
    const status = await runJtm(['status', '-tid', String(id), '--json'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ status_name: 'success' });
    const killMe = await submitOne(env, ['-cmd', 'sleep 60', '-p', pool]);
    await waitStatusShown(env, killMe, 'running');
    expect((await runJtm(['kill', '-tid', String(killMe)], env)).code).toBe(0);
    expect(await statusOf(env, killMe)).toBe('terminated');
    return { taskEnv: readFileSync(join(work, 'env.txt'), 'utf8'), worker: worker.output() };
  } finally {
    await worker.stop();
  }
}

function expectCleanTaskEnv(taskEnv: string): void {
  expect(taskEnv).toContain('SITE_SETTING=from-the-worker');
  expect(taskEnv).toMatch(/^JTM_TASK_ID=\d+$/m);
  expect(taskEnv).not.toMatch(/^(JTM_)?REDIS_URL=/m);
  expect(taskEnv).not.toMatch(/^JTM_DASHBOARD_(USER|PASSWORD)=/m);
  expect(taskEnv).not.toContain(PASSWORD);
  expect(taskEnv).not.toContain('dash-secret');
  expect(taskEnv.trim().split('\n').at(-1)).toBe(String(process.getuid?.()));
}

describe('Redis ACL user with a password', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startPlainRedis();
    const p = String(server.port);
    // Limited to JTM's keys and channels (tests use prefixes `{t-…}`), as docs/reliability.md advises.
    redisCli(['-p', p, 'ACL', 'SETUSER', 'jtm', 'on', `>${PASSWORD}`, '~{t-*', '&{t-*', '+@all']);
    redisCli(['-p', p, 'ACL', 'SETUSER', 'default', 'off']);
  });
  afterAll(async () => server.stop());

  it('runs submit, worker, status and kill as the ACL user; the task gets no secret', async () => {
    const env = testEnv({ REDIS_URL: `redis://jtm:${PASSWORD}@127.0.0.1:${server.port}` });
    const { taskEnv, worker } = await coreFlow(env, 'acl');
    expectCleanTaskEnv(taskEnv);
    expect(worker).not.toContain(PASSWORD);
    expect(worker).not.toContain('dash-secret');
  });

  it('a wrong password or a disabled user fails at once with one masked line, exit 255; isalive too', async () => {
    for (const url of [
      `redis://jtm:wrong-${PASSWORD}@127.0.0.1:${server.port}`,
      `redis://127.0.0.1:${server.port}`,
    ]) {
      const env = testEnv({ REDIS_URL: url, JTM_CONNECT_TIMEOUT: '1s', JTM_ISALIVE_RETRY: '1s' });
      const r = await runJtm(['status', '-tid', '1', '--debug'], env);
      expect(r.code).toBe(255);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toContain(PASSWORD);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^jtm status: /);
      const s = await runJtm(['submit', '-cmd', 'true', '-p', 'acl'], env);
      expect([s.code, s.stdout]).toEqual([255, '']);
      expect(s.stderr.trim().split('\n')).toHaveLength(1);
      expect(s.stderr).not.toContain(PASSWORD);
      // Refused credentials are not an outage: no `unknown` after retries (issue 12 item 9).
      const alive = await runJtm(['isalive', '-tid', '1'], env);
      expect([alive.stdout, alive.code]).toEqual(['', 255]);
      expect(alive.stderr.trim()).toMatch(/^jtm isalive: Redis at .* refused JTM \((WRONGPASS|NOAUTH)/);
      expect(alive.stderr).not.toContain(PASSWORD);
    }
    // The password given as a flag is masked too.
    const r = await runJtm(
      ['status', '-tid', '1', '--redis-url', `redis://jtm:wrong${PASSWORD}@127.0.0.1:${server.port}`],
      testEnv({ JTM_CONNECT_TIMEOUT: '1s' }),
    );
    expect(r.stderr).toContain(`redis://jtm:***@127.0.0.1:${server.port}`);
    expect(r.stderr).not.toContain(PASSWORD);
  });

  it.concurrent.each(['hmget', 'evalsha', 'xadd'])(
    'a worker whose user may not run %s stops, exit 255, saying why; another worker runs the task',
    async command => {
      const p = String(server.port);
      const user = `jtm-no-${command}`;
      // As the ACL user: the default user is off on this server.
      redisCli([
        '-p',
        p,
        '--user',
        'jtm',
        '--pass',
        PASSWORD,
        '--no-auth-warning',
        'ACL',
        'SETUSER',
        user,
        'on',
        `>${PASSWORD}`,
        '~{t-*',
        '&{t-*',
        '+@all',
        `-${command}`,
      ]);
      const full = testEnv({ REDIS_URL: `redis://jtm:${PASSWORD}@127.0.0.1:${server.port}` });
      // Short locks: the job the refused worker held is handed on once its lock expires.
      const env = {
        ...full,
        REDIS_URL: `redis://${user}:${PASSWORD}@127.0.0.1:${server.port}`,
        JTM_LOCK_DURATION: '5s',
      };
      const pool = `acl-no-${command}`;
      const id = await submitOne(full, ['-cmd', 'true', '-p', pool]);
      const w = startJtm(['worker', '-p', pool], env);
      const code = await Promise.race([w.exited, sleep(60_000).then(() => 'still running')]);
      await w.stop('SIGKILL');
      expect(code).toBe(255);
      expect(w.output()).toContain("Redis refuses this worker's user a command JTM needs (ACL)");
      expect(w.output()).not.toContain(PASSWORD);
      // The job was not failed: a worker with the rights runs the task (once the broken one's lock expires).
      const good = startJtm(['worker', '-p', pool], { ...full, JTM_STALLED_INTERVAL: '2s' });
      try {
        await waitStatusShown(full, id, 'success', 90_000);
      } finally {
        await good.stop();
      }
    },
  );

  it('a worker whose user may not run PEXPIRE (inside its beat transaction) names it: exit 255, one line (adversary 24 F8: "EXECABORT Transaction discarded …")', async () => {
    const cli = ['-p', String(server.port), '--user', 'jtm', '--pass', PASSWORD, '--no-auth-warning'];
    redisCli([
      ...cli,
      'ACL',
      'SETUSER',
      'jtm-no-pexpire',
      'on',
      `>${PASSWORD}`,
      '~{t-*',
      '&{t-*',
      '+@all',
      '-pexpire',
    ]);
    const env = testEnv({ REDIS_URL: `redis://jtm-no-pexpire:${PASSWORD}@127.0.0.1:${server.port}` });
    const w = startJtm(['worker', '-p', 'acl-no-pexpire'], env);
    expect(await Promise.race([w.exited, sleep(30_000).then(() => 'still running')])).toBe(255);
    await w.stop('SIGKILL');
    expect(w.output().trim().split('\n').at(-1)).toMatch(
      /^jtm worker: Redis at \S+ refused JTM \(NOPERM .*'pexpire' command\): .*ACL rights$/,
    );
  });

  it('a running worker whose user loses PEXPIRE stops, exit 255, naming it (it stayed up, its beats refused: EXECABORT)', async () => {
    const cli = ['-p', String(server.port), '--user', 'jtm', '--pass', PASSWORD, '--no-auth-warning'];
    const user = ['ACL', 'SETUSER', 'jtm-loses-pexpire'];
    redisCli([...cli, ...user, 'on', `>${PASSWORD}`, '~{t-*', '&{t-*', '+@all']);
    const env = testEnv({ REDIS_URL: `redis://jtm-loses-pexpire:${PASSWORD}@127.0.0.1:${server.port}` });
    const w = startJtm(['worker', '-p', 'acl-loses-pexpire'], env);
    await waitFor(() => /worker started/.test(w.output()), 'worker started');
    redisCli([...cli, ...user, '-pexpire']);
    expect(await Promise.race([w.exited, sleep(20_000).then(() => 'still running')])).toBe(255);
    await w.stop('SIGKILL');
    expect(w.output()).toMatch(/Redis refuses this worker's user a command JTM needs \(ACL\)/);
    expect(w.output()).toMatch(/NOPERM [^"]*'pexpire' command/);
  });

  it('a read-only ACL user (a monitor, a check-alive-only host) answers status, isalive, logs, resource-log and the checks; submit and kill are refused in one line, exit 255 (adversary 35 F5: the line in docs/reliability.md)', async () => {
    const full = testEnv({ REDIS_URL: `redis://jtm:${PASSWORD}@127.0.0.1:${server.port}` });
    const prefix = full['JTM_PREFIX']!;
    // The documented line, with the test's prefix.
    redisCli([
      ...['-p', String(server.port), '--user', 'jtm', '--pass', PASSWORD, '--no-auth-warning'],
      ...['ACL', 'SETUSER', 'jtm-read', 'on', `>${PASSWORD}`, `~${prefix}*`, `&${prefix}*`],
      ...['+@read', '+@connection', '+info'],
    ]);
    const id = await submitOne(full, ['-cmd', 'printf read-only-ok', '-p', 'acl-read']);
    const w = startJtm(['worker', '-p', 'acl-read'], full);
    try {
      await waitStatusShown(full, id, 'success');
    } finally {
      await w.stop();
    }
    const ro = { ...full, REDIS_URL: `redis://jtm-read:${PASSWORD}@127.0.0.1:${server.port}` };
    const answers: [string[], number, RegExp][] = [
      [['status', '-tid', String(id)], 1, /^success\n$/],
      [['isalive', '-tid', String(id)], 1, /^no\n$/],
      [['status', '-tid', '999999'], 1, /^invalidtask\n$/],
      [['logs', '-tid', String(id)], 0, /^read-only-ok$/],
      [['resource-log', '-tid', String(id)], 0, /"task_id": \d+/],
      [['check-worker', '-p', 'acl-read'], 1, /^0\n$/],
    ];
    for (const [args, code, out] of answers) {
      const r = await runJtm(args, ro);
      expect([r.code, r.stdout], `${args.join(' ')}: ${r.stderr}`).toEqual([
        code,
        expect.stringMatching(out),
      ]);
      expect(r.stderr, args.join(' ')).toBe('');
    }
    const keys = (): string[] =>
      redisCli([
        ...['-p', String(server.port), '--user', 'jtm', '--pass', PASSWORD, '--no-auth-warning'],
        ...['--scan', '--pattern', `${prefix}*`],
      ])
        .trim()
        .split('\n')
        .sort();
    const before = keys();
    for (const args of [
      ['submit', '-cmd', 'true', '-p', 'acl-read'],
      ['kill', '-tid', String(id)],
    ]) {
      const r = await runJtm(args, ro);
      expect([r.code, r.stdout], args[0]).toEqual([255, '']);
      // The documented line (it was "submit did not complete, none of its tasks will run (NOPERM …)" for submit:
      // adversary 40 L5).
      expect(r.stderr.trim().split('\n'), args[0]).toEqual([
        expect.stringMatching(
          new RegExp(
            `^jtm ${args[0]}: Redis at redis://jtm-read:\\*\\*\\*@\\S+ refused JTM \\(NOPERM .*'evalsha' command\\): check the user and password in REDIS_URL, and the user's ACL rights$`,
          ),
        ),
      ]);
    }
    expect(keys()).toEqual(before);
    // Nothing the refused submit began is left to run.
    expect(await statusOf(full, id)).toBe('success');
  });

  it('a worker with a wrong password logs no secret', async () => {
    const env = testEnv({
      REDIS_URL: `redis://jtm:bad${PASSWORD}@127.0.0.1:${server.port}`,
      JTM_LOG_LEVEL: 'debug',
    });
    const w = startJtm(['worker', '-p', 'acl2'], env);
    await waitFor(() => w.output().includes('WRONGPASS'), 'the AUTH failure in the log');
    await w.stop('SIGKILL');
    // The AUTH failure is logged (ioredis attaches the command's arguments to it) without the password.
    expect(w.output()).toContain('WRONGPASS');
    expect(w.output()).not.toContain(PASSWORD);
  });
});

describe('TLS (rediss://) with a server that requires client certificates', () => {
  let pki: Pki;
  let server: Server;
  beforeAll(async () => {
    pki = makePki();
    server = await startTlsRedis(pki, 'yes');
  });
  afterAll(async () => server.stop());

  it('without one, every command and every worker says so and exits 255 (a worker waited for ever, 1 start in 4)', async () => {
    const env = testEnv({ REDIS_URL: `rediss://127.0.0.1:${server.port}`, JTM_REDIS_TLS_CA: pki.ca });
    const line =
      /TLS with Redis at rediss:\/\/127\.0\.0\.1:\d+ failed: the server requires a client certificate: set JTM_REDIS_TLS_CERT and JTM_REDIS_TLS_KEY/;
    for (const cmd of [
      ['status', '-tid', '1'],
      ['submit', '-cmd', 'true', '-p', 'x'],
      ['isalive', '-tid', '1'],
    ]) {
      const r = await runJtm(cmd, env);
      expect([cmd[0], r.code]).toEqual([cmd[0], 255]);
      expect(r.stderr).toMatch(line);
    }
    // Daemons: the server's alert may come only after a reset or two, past the first wait.
    const workers = [1, 2, 3, 4].map(() => startJtm(['worker', '-p', 'mtls-required'], env));
    const codes = await Promise.all(
      workers.map(w => Promise.race([w.exited, sleep(60_000).then(() => 'still running')])),
    );
    await Promise.all(workers.map(w => w.stop('SIGKILL')));
    expect(codes).toEqual([255, 255, 255, 255]);
    for (const w of workers) expect(w.output()).toMatch(line);
  });
});

describe('TLS (rediss://) with a private CA', () => {
  let pki: Pki;
  let server: Server;
  beforeAll(async () => {
    pki = makePki();
    server = await startTlsRedis(pki);
    redisCli([
      '--tls',
      '--cacert',
      pki.ca,
      '-p',
      String(server.port),
      'ACL',
      'SETUSER',
      'jtm',
      'on',
      `>${PASSWORD}`,
      '~*',
      '&*',
      '+@all',
    ]);
  });
  afterAll(async () => server.stop());

  it('runs the core flow over TLS with an ACL user (CA from JTM_REDIS_TLS_CA)', async () => {
    const env = testEnv({
      REDIS_URL: `rediss://jtm:${PASSWORD}@127.0.0.1:${server.port}`,
      JTM_REDIS_TLS_CA: pki.ca,
    });
    const { taskEnv, worker } = await coreFlow(env, 'tls');
    expectCleanTaskEnv(taskEnv);
    expect(worker).not.toContain(PASSWORD);
  });

  it('with a client certificate (mutual TLS)', async () => {
    const env = testEnv({
      REDIS_URL: `rediss://jtm:${PASSWORD}@127.0.0.1:${server.port}`,
      JTM_REDIS_TLS_CA: pki.ca,
      JTM_REDIS_TLS_CERT: pki.cert,
      JTM_REDIS_TLS_KEY: pki.key,
    });
    const r = await runJtm(['submit', '-cmd', 'true', '-p', 'mtls'], env);
    expect(r.code).toBe(0);
  });

  it('refuses a client key that cannot work and a certificate without its key at once: one line, exit 255, isalive too', async () => {
    const other = join(pki.dir, 'other.key');
    const locked = join(pki.dir, 'locked.key');
    const empty = join(pki.dir, 'empty.key');
    execFileSync('openssl', ['genrsa', '-out', other, '2048'], { stdio: 'ignore' });
    execFileSync('openssl', ['genrsa', '-aes128', '-passout', 'pass:x', '-out', locked, '2048'], {
      stdio: 'ignore',
    });
    writeFileSync(empty, '');
    const url = `rediss://jtm:${PASSWORD}@127.0.0.1:${server.port}`;
    const cases: [Record<string, string>, string][] = [
      [
        { JTM_REDIS_TLS_KEY: other },
        `JTM_REDIS_TLS_KEY=${other} is not the key of JTM_REDIS_TLS_CERT=${pki.cert}`,
      ],
      [{ JTM_REDIS_TLS_KEY: locked }, `JTM_REDIS_TLS_KEY=${locked} is protected by a passphrase`],
      [{ JTM_REDIS_TLS_KEY: empty }, `JTM_REDIS_TLS_KEY=${empty} is not a usable PEM private key`],
      [{ JTM_REDIS_TLS_KEY: '' }, 'JTM_REDIS_TLS_CERT is set without JTM_REDIS_TLS_KEY'],
    ];
    for (const [extra, message] of cases) {
      const env = testEnv({
        REDIS_URL: url,
        JTM_REDIS_TLS_CA: pki.ca,
        JTM_REDIS_TLS_CERT: pki.cert,
        ...extra,
      });
      if (extra['JTM_REDIS_TLS_KEY'] === '') delete env['JTM_REDIS_TLS_KEY'];
      for (const cmd of [
        ['isalive', '-tid', '1'],
        ['status', '-tid', '1'],
        ['worker', '-p', 'badkey'],
      ]) {
        const r = await runJtm(cmd, env);
        expect([cmd[0], r.code, r.stdout]).toEqual([cmd[0], 255, '']);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toContain(`jtm ${cmd[0]}: ${message}`);
      }
    }
  });

  it('refuses a server it cannot verify, and a plain redis:// URL (adversary 40 M3), with one line and exit 255', async () => {
    const noCa = testEnv({
      REDIS_URL: `rediss://jtm:${PASSWORD}@127.0.0.1:${server.port}`,
      JTM_CONNECT_TIMEOUT: '1s',
    });
    const plain = testEnv({
      REDIS_URL: `redis://jtm:${PASSWORD}@127.0.0.1:${server.port}`,
      JTM_CONNECT_TIMEOUT: '1s',
    });
    // An unverifiable server is a configuration error, said as such (TLS, the CA to check); so is a plain
    // client on a TLS port, which the server answers by closing the connection (it said "cannot reach Redis",
    // and isalive answered unknown for ever).
    const cases: [Record<string, string>, RegExp][] = [
      [noCa, /^jtm status: TLS with Redis at rediss:\/\/jtm:\*\*\*@\S+ failed: check JTM_REDIS_TLS_CA/],
      [plain, /^jtm status: Redis at redis:\/\/jtm:\*\*\*@\S+ answers only TLS: use rediss:\/\//],
    ];
    for (const [env, line] of cases) {
      const r = await runJtm(['status', '-tid', '1'], env);
      expect(r.code).toBe(255);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(line);
      expect(r.stderr).not.toContain(PASSWORD);
    }
    // As for the reverse mistake (rediss:// on a plain port): isalive exits 255 at once, not unknown after its retries.
    const t0 = Date.now();
    const r = await runJtm(['isalive', '-tid', '1'], { ...plain, JTM_ISALIVE_RETRY: '30s' });
    expect([r.code, r.stdout]).toEqual([255, '']);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^jtm isalive: .* answers only TLS/)]);
    expect(Date.now() - t0).toBeLessThan(15_000);
    // A worker, which retries an outage for ever, stops too.
    const w = await runJtm(['worker', '-p', 'tls-only'], plain, { timeoutMs: 30_000 });
    expect(w.code).toBe(255);
    expect(w.stderr.trim().split('\n').at(-1)).toMatch(/^jtm worker: .* answers only TLS/);
  });
});
