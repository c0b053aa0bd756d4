import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import {
  BIN,
  logsBytes,
  runJtm,
  startJtm,
  taskIds,
  type BackgroundProcess,
  waitWorkers,
} from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';

/*
 * Issue 12 (output fidelity, one bad task never hurts another, limits) and the process side of issue 13 (no
 * descriptor leaks into tasks; the pty host kills its tasks when its worker dies or stops answering).
 */

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The children of `pid` (none once it is gone). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1')
      .trim()
      .split(' ')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

function pgrep(args: string[]): number[] {
  try {
    return execFileSync('pgrep', args, { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('output fidelity and task isolation', () => {
  const env = testEnv();
  // Made in beforeAll: a run filtered to other tests (-t) runs no afterAll here to remove it.
  let work = '';
  let worker: BackgroundProcess;
  let ctx: JtmContext;
  let n = 0;

  /** Submits tasks from a JSON-lines file (stdout paths need the task file); returns their ids. */
  const submit = async (tasks: Record<string, unknown>[], extra: string[] = []): Promise<number[]> => {
    const file = join(work, `tasks-${n++}.jsonl`);
    writeFileSync(file, tasks.map(t => JSON.stringify(t)).join('\n'));
    const r = await runJtm(['submit', '-f', file, '-p', 'fid', ...extra], env, { cwd: work });
    expect(r.stderr).toBe('');
    return taskIds(r.stdout);
  };
  const waitFinal = (id: number, timeoutMs = 60_000): Promise<number> =>
    waitFor(
      async () => {
        const s = await ctx.tasks.status(id);
        return s !== undefined && (s < 0 || s === 4) ? s : undefined;
      },
      `task ${id} to end`,
      timeoutMs,
    );

  beforeAll(async () => {
    work = tempDir('jtm-fid-');
    ctx = await openTestContext(env);
    worker = startJtm(['worker', '-p', 'fid', '--slots', '3'], env);
    await waitWorkers(env, 'fid', 1, 50_000);
  });
  afterAll(async () => {
    await worker.stop();
    await closeContext(ctx);
    rmSync(work, { recursive: true, force: true });
    rmSync(env['JTM_LOG_DIR']!, { recursive: true, force: true });
  });

  it('12 tasks × 850,000 bytes on 3 slots: every file complete and exact', async () => {
    const command = (i: number): string => `seq -f 'task ${String(i).padStart(2, '0')} line %020g' 1 25000`;
    const tasks = Array.from({ length: 12 }, (_, i) => ({
      command: command(i),
      stdout: join(work, `big-${i}.out`),
    }));
    const ids = await submit(tasks);
    for (const id of ids) expect(await waitFinal(id)).toBe(4);
    for (let i = 0; i < 12; i++) {
      const expected = execFileSync('bash', ['-c', command(i)]);
      expect(expected.length).toBe(850_000);
      const got = readFileSync(join(work, `big-${i}.out`));
      expect([got.length, sha(got)]).toEqual([expected.length, sha(expected)]);
    }
  });

  it('a command that seeks on its stdout writes where it seeks, as under bash -c … > file; stderr named as stdout shares it (adversary 31 F2)', async () => {
    // Appended before (>>): "AAAAB" where a plain run writes "ABAA" (a WAV writer fixing its header came out
    // corrupted, the task success). Through bash's preamble (a quoted command) and the wrapper of simple commands
    // (a script's path alone).
    const seek = `python3 -c "import os; os.write(1,b'AAAA'); os.lseek(1,1,0); os.write(1,b'B')"`;
    const script = join(work, 'seek.sh');
    writeFileSync(script, `#!/bin/bash\n${seek}\necho err >&2\necho out\n`, { mode: 0o755 });
    const mixed = 'echo one; echo two >&2; echo three; echo four >&2';
    const cases = [
      { command: seek, stdout: join(work, 'seek-bash.out') },
      { command: script, stdout: join(work, 'seek-exec.out'), stderr: join(work, 'seek-exec.out') },
      // One file, named twice otherwise: opened once, shared as by 2>&1 (opened twice, each wrote over the other).
      { command: mixed, stdout: join(work, 'mixed.out'), stderr: `${work}/./mixed.out` },
      { command: `${script} 2>/dev/null`, stdout: join(work, 'seek-plain.out') },
    ];
    const ids = await submit(cases);
    for (const id of ids) expect(await waitFinal(id)).toBe(4);
    // Each file against the same command run directly, redirected as the task was.
    const plain = join(work, 'direct.out');
    const direct = (command: string, redirect: string): string => {
      execFileSync('bash', ['-c', `${command} ${redirect}`]);
      return readFileSync(plain, 'latin1');
    };
    const got = (i: number): string => readFileSync(cases[i]!.stdout, 'latin1');
    expect(got(0)).toBe('ABAA');
    expect(got(0)).toBe(direct(seek, `>${plain}`));
    expect(got(1)).toBe(direct(script, `>${plain} 2>&1`));
    expect(got(1)).toBe('ABerr\nout\n'); // written on after the seek, as directly
    expect(got(2)).toBe('one\ntwo\nthree\nfour\n');
    expect(got(3)).toBe(direct(`${script} 2>/dev/null`, `>${plain}`));
  });

  it("two tasks naming the same stdout take turns: each one's output is its own, the file the later one's", async () => {
    // Adversary 5 G6: the second start emptied the file under the first, and both recorded the mixed file
    // ("B1 A6 B2 A7 B3 A8") as their output.
    const out = join(work, 'same.out');
    // The first holds its turn until released: on a loaded runner the others' submits and the kill took longer
    // than its 4 s, and it had ended when the test looked (a fresh-clone run failed so).
    const release = join(work, 'same.release');
    const [a] = await submit([
      {
        command: `for i in 1 2 3 4 5 6 7 8; do echo A$i; sleep 0.2; done; while [ ! -e ${release} ]; do sleep 0.1; done`,
        stdout: out,
      },
    ]);
    await waitFor(async () => (await ctx.tasks.status(a!)) === 3, 'the first to run');
    const [b] = await submit([{ command: 'for i in 1 2; do echo B$i; sleep 0.2; done', stdout: out }]);
    // A third one, killed while it waits for its turn: it ends at once, and touches nothing.
    const [c] = await submit([{ command: 'echo C', stdout: out }]);
    await waitFor(async () => (await ctx.tasks.status(c!)) === 3, 'the third to wait');
    await runJtm(['kill', '-tid', String(c)], env);
    expect(await waitFinal(c!)).toBe(-4);
    expect(await ctx.tasks.status(a!)).toBe(3);
    writeFileSync(release, '');
    for (const id of [a!, b!]) expect(await waitFinal(id)).toBe(4);
    expect((await logsBytes(env, a!)).out.toString()).toBe('A1\nA2\nA3\nA4\nA5\nA6\nA7\nA8\n');
    expect((await logsBytes(env, b!)).out.toString()).toBe('B1\nB2\n');
    expect(readFileSync(out, 'utf8')).toBe('B1\nB2\n');
    expect(worker.output()).toMatch(/another task running here writes to the same output file/);
  });

  it('take turns too when they name the file otherwise: //, /./, a symlinked directory, a hard link (adversary 10 K3)', async () => {
    const dir = join(work, 'k3');
    mkdirSync(dir);
    symlinkSync(dir, join(work, 'k3-link'));
    const line = (name: string): string => `for i in 1 2 3; do echo ${name}$i; sleep 0.3; done`;
    const [a] = await submit([{ command: line('A'), stdout: join(dir, 'f.out') }]);
    await waitFor(async () => (await ctx.tasks.status(a!)) === 3, 'the first to run');
    // A hard link to the file the first one made (it did not exist before it). The task opens its output once
    // it runs, a moment after its record says running: linked too soon under load, ENOENT.
    await waitFor(() => existsSync(join(dir, 'f.out')), 'the first one’s output file');
    linkSync(join(dir, 'f.out'), join(dir, 'hard.out'));
    const names = { B: `${dir}//./f.out`, C: join(work, 'k3-link', 'f.out'), H: join(dir, 'hard.out') };
    const others = await submit(Object.entries(names).map(([n, stdout]) => ({ command: line(n), stdout })));
    const ids = [a!, ...others];
    for (const id of ids) expect(await waitFinal(id)).toBe(4);
    const outs = await Promise.all(ids.map(async id => (await logsBytes(env, id)).out.toString()));
    expect(outs).toEqual(['A', 'B', 'C', 'H'].map(n => `${n}1\n${n}2\n${n}3\n`));
    // One after the other: the file holds the last one's output alone.
    expect(outs).toContain(readFileSync(join(dir, 'f.out'), 'utf8'));
  });

  it('logs of a task whose shared stdout was rewritten after it (same size) give its own output, not the file', async () => {
    // Found trying to break the turns: the later task rewrote the file to the same size, and `jtm logs` of the
    // earlier printed the later one's bytes (the file's size was all it checked).
    const out = join(work, 'same-size.out');
    const [a] = await submit([{ command: 'sleep 1; echo A', stdout: out }]);
    await waitFor(async () => (await ctx.tasks.status(a!)) === 3, 'the first to run');
    const [b] = await submit([{ command: 'echo B', stdout: out }]);
    for (const id of [a!, b!]) expect(await waitFinal(id)).toBe(4);
    expect(readFileSync(out, 'utf8')).toBe('B\n');
    expect((await logsBytes(env, a!)).out.toString()).toBe('A\n');
    expect((await logsBytes(env, b!)).out.toString()).toBe('B\n');
  });

  it('keeps bytes exact: cat of 5 KB, random bytes, gzip, CR LF, NUL, invalid UTF-8; logs gives the same', async () => {
    const text = Buffer.from('0123456789abcdef\n'.repeat(300).slice(0, 5000));
    writeFileSync(join(work, 'five-k.txt'), text);
    const random = randomBytes(4096);
    writeFileSync(join(work, 'random.bin'), random);
    const odd = Buffer.from('a\r\nb\r\rc\0d\xff\xfe\xc3\x28 end\r', 'latin1');
    writeFileSync(join(work, 'odd.bin'), odd);
    const ids = await submit([
      { command: 'cat five-k.txt', stdout: join(work, 'five-k.out') },
      { command: 'cat random.bin', stdout: join(work, 'random.out') },
      { command: 'gzip -c five-k.txt', stdout: join(work, 'gz.out') },
      { command: "printf 'a\\r\\nb\\r\\rc\\0d\\377\\376\\303\\050 end\\r'", stdout: join(work, 'odd.out') },
    ]);
    for (const id of ids) expect(await waitFinal(id)).toBe(4);
    expect(readFileSync(join(work, 'five-k.out'))).toEqual(text);
    expect(readFileSync(join(work, 'random.out'))).toEqual(random);
    expect(gunzipSync(readFileSync(join(work, 'gz.out')))).toEqual(text);
    expect(readFileSync(join(work, 'odd.out'))).toEqual(odd);
    // `jtm logs` after the end: the same bytes, from the file; and from the Redis copy once the file is gone.
    const random2 = await logsBytes(env, ids[1]!);
    expect(random2.out).toEqual(random);
    const odd2 = await logsBytes(env, ids[3]!);
    expect(odd2.out).toEqual(odd);
    unlinkSync(join(work, 'random.out'));
    const fromRedis = await logsBytes(env, ids[1]!);
    expect([fromRedis.code, fromRedis.err]).toEqual([0, '']);
    expect(fromRedis.out).toEqual(random);
    expect(await ctx.tasks.get(ids[1]!)).toMatchObject({
      stdout_file: join(work, 'random.out'),
      output_bytes: 4096,
    });
  });

  it('keeps at most JTM_OUTPUT_TAIL_BYTES of a 5 MB output in Redis while it runs, JTM_OUTPUT_KEEP_BYTES once ended; logs says what was dropped', async () => {
    const [id] = await submit([
      {
        command: "head -c 5000000 /dev/zero | tr '\\0' x; echo; echo the end; sleep 3",
        stdout: join(work, 'five-m.out'),
      },
    ]);
    const keptNow = async (): Promise<number> =>
      (await ctx.redis.xrangeBuffer(ctx.keys.taskOutput(id!), '-', '+')).reduce(
        (sum, [, f]) => sum + (f[1] as Buffer).length,
        0,
      );
    // While it sleeps: the running cap (1 MiB), nearly full.
    await waitFor(async () => (await keptNow()) > 512 * 1024, 'the running copy');
    expect(await keptNow()).toBeLessThanOrEqual(1024 * 1024);
    expect(await waitFinal(id!)).toBe(4);
    // Ended: the last 64 KiB exactly, as a hash with their offset, for the record's retention; the stream is gone
    // (a stream's first node costs 4 KB of Redis whatever it holds: adversary 8 I6).
    const file = readFileSync(join(work, 'five-m.out'));
    expect(await ctx.redis.exists(ctx.keys.taskOutput(id!))).toBe(0);
    const [data, off] = await ctx.redis.hmgetBuffer(ctx.keys.taskOutputKept(id!), 'data', 'off');
    const kept = data!.length;
    expect(kept).toBe(64 * 1024);
    expect(Number(off!.toString())).toBe(file.length - kept);
    expect(data!.equals(file.subarray(file.length - kept))).toBe(true);
    expect(file.length).toBe(5_000_009);
    unlinkSync(join(work, 'five-m.out'));
    const r = await logsBytes(env, id!);
    expect(r.code).toBe(0);
    expect(sha(r.out)).toBe(sha(file.subarray(file.length - kept)));
    const lines = r.err.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ dropped_bytes: file.length - kept });
  });

  it('JTM_OUTPUT_KEEP_BYTES smaller than an entry keeps exactly the last that many bytes (whole entries went: none was kept); 0 keeps none', async () => {
    for (const keep of [4096, 0]) {
      const pool = `fid-keep-${keep}`;
      const w = startJtm(['worker', '-p', pool], { ...env, JTM_OUTPUT_KEEP_BYTES: String(keep) });
      try {
        await waitWorkers(env, pool, 1, 50_000);
        const out = join(work, `keep-${keep}.out`);
        const file = join(work, `keep-${n++}.jsonl`);
        writeFileSync(file, JSON.stringify({ command: 'seq 1 20000 | head -c 100000', stdout: out }));
        const [id] = taskIds((await runJtm(['submit', '-f', file, '-p', pool], env, { cwd: work })).stdout);
        expect(await waitFinal(id!)).toBe(4);
        const entries = await ctx.redis.xrangeBuffer(ctx.keys.taskOutput(id!), '-', '+');
        const [keptData] = await ctx.redis.hmgetBuffer(ctx.keys.taskOutputKept(id!), 'data');
        const kept = keptData ?? Buffer.concat(entries.map(([, f]) => f[1] as Buffer));
        const whole = readFileSync(out);
        expect(kept.length).toBe(keep);
        expect(kept.equals(whole.subarray(whole.length - kept.length))).toBe(true);
      } finally {
        await w.stop();
      }
    }
  });

  it('a bad stdout fails its task alone, with one line; the neighbour succeeds and the worker beats on', async () => {
    const fifo = join(work, 'no-reader.fifo');
    execFileSync('mkfifo', [fifo]);
    const dir = join(work, 'a-dir');
    mkdirSync(dir);
    writeFileSync(join(work, 'plain-file'), 'x');
    const bad: [string, RegExp][] = [
      ['/dev/full', /^cannot write stdout: ENOSPC: \/dev\/full /],
      ['/proc/version', /^cannot write stdout: (EIO|EACCES): \/proc\/version /],
      [fifo, /^cannot write stdout: ENXIO: .* is a FIFO with no reader$/],
      [dir, /^cannot write stdout: EISDIR: .* is a directory$/],
      [join(work, 'plain-file', 'below.out'), /^cannot write stdout: ENOTDIR: /],
      // Node's recursive mkdir spins forever under /proc (the task stayed running, a core busy).
      ['/proc/jtm-no-such-dir/out', /^cannot write stdout: ENOENT: \/proc\/jtm-no-such-dir\/out /],
      // Said once, not the path and then Node's message with its directory again (adversary 41 F3: 10 KB). Over
      // NAME_MAX once the worker expands it (submit refuses a literal one).
      [
        join(work, `\${JTM_TASK_ID}${'n'.repeat(300)}`, 'out'),
        /^cannot write stdout: ENAMETOOLONG: \/\S+\/out is too long a path [^/]*$/,
      ],
    ];
    const [neighbour] = await submit([
      { command: 'sleep 2; echo fine', stdout: join(work, 'neighbour.out') },
    ]);
    await waitFor(async () => (await ctx.tasks.status(neighbour!)) === 3, 'neighbour to run');
    const ids = await submit(bad.map(([path]) => ({ command: 'echo hello', stdout: path })));
    for (const [i, id] of ids.entries()) {
      expect(await waitFinal(id)).toBe(-2);
      const reason = (await ctx.tasks.get(id))!.reason!;
      expect(reason).toMatch(bad[i]![1]);
      expect(reason).not.toContain('\n');
    }
    expect(await waitFinal(neighbour!)).toBe(4);
    expect(readFileSync(join(work, 'neighbour.out'), 'utf8')).toBe('fine\n');
    expect((await runJtm(['check-worker', '-p', 'fid'], env)).code).toBe(0);
    expect(worker.child.exitCode).toBeNull();
  });

  it("never writes into the worker's own log: /dev/stdout refused at submit, a link to it fails its task, the log intact", async () => {
    for (const field of ['stdout', 'stderr', 'rc_file']) {
      for (const path of [
        '/dev/stdout',
        '/dev/stderr',
        '/proc/self/fd/1',
        '/dev/fd/2',
        '/dev/./stdout',
        '//dev/stderr',
      ]) {
        const file = join(work, `own-${n++}.jsonl`);
        writeFileSync(file, JSON.stringify({ command: 'echo hi', [field]: path }));
        const r = await runJtm(['submit', '-f', file, '-p', 'fid'], env, { cwd: work });
        expect(r.code).toBe(1);
        expect(r.stderr.trim()).toBe(
          `jtm submit: ${field} "${path}" would be the worker's own output, not yours: give a file`,
        );
      }
    }
    // Terminals: the output would be lost (adversary 10 K10: `/dev/ptmx` and `/dev/pts/N` were taken, task success).
    for (const path of ['/dev/ptmx', '/dev/pts/0', '/dev/tty', '/dev/tty1']) {
      const file = join(work, `tty-${n++}.jsonl`);
      writeFileSync(file, JSON.stringify({ command: 'echo hi', stdout: path }));
      const r = await runJtm(['submit', '-f', file, '-p', 'fid'], env, { cwd: work });
      expect([r.code, r.stderr.trim()]).toEqual([
        1,
        `jtm submit: stdout "${path}" is a terminal, where the output would be lost: give a file`,
      ]);
    }
    // A worker whose stdout and stderr go to a file (jtm worker > w.log 2>&1, Slurm's --output).
    const log = join(work, 'worker.log');
    const fd = openSync(log, 'a');
    const own = spawn(process.execPath, [BIN, 'worker', '-p', 'fid-log'], { env, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    try {
      await waitWorkers(env, 'fid-log', 1, 50_000);
      await waitFor(() => readFileSync(log, 'latin1').length > 0, 'the worker to log');
      const before = readFileSync(log, 'latin1');
      const link = join(work, 'to-worker-log');
      execFileSync('ln', ['-s', '/dev/stdout', link]);
      const file = join(work, `own-${n++}.jsonl`);
      writeFileSync(file, JSON.stringify({ command: 'echo TASK-OUTPUT', stdout: link }));
      const r = await runJtm(['submit', '-f', file, '-p', 'fid-log'], env, { cwd: work });
      const [id] = taskIds(r.stdout);
      expect(await waitFinal(id!)).toBe(-2);
      expect((await ctx.tasks.get(id!))!.reason).toMatch(/is the worker's own stdout or stderr$/);
      const after = readFileSync(log, 'latin1');
      expect(after.startsWith(before)).toBe(true);
      expect(after).not.toContain('\0');
      expect(after).not.toContain('TASK-OUTPUT');
    } finally {
      own.kill('SIGTERM');
      await new Promise(r => own.once('exit', r));
    }
  });

  it('a 25-day time limit does not fire early; beyond 365 days is refused at submit', async () => {
    const [id] = await submit([{ command: 'sleep 1; echo ok', timeout: '25d' }]);
    expect(await waitFinal(id!)).toBe(4);
    const [id2] = await submit([{ command: 'sleep 1; echo ok' }], ['--timeout', '720:00:00']);
    expect(await waitFinal(id2!)).toBe(4);
    const r = await runJtm(['submit', '-cmd', 'ls', '-p', 'fid', '--timeout', '400d'], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/365 days/);
  });

  it('no task inherits a descriptor beyond 0, 1, 2 while other tasks run', async () => {
    const ids = await submit([4711, 4712, 4713].map(s => ({ command: `sleep ${s}` })));
    const pids = await waitFor(() => {
      const found = [4711, 4712, 4713].map(s => pgrep(['-f', `^sleep ${s}$`])[0]);
      return found.every(p => p !== undefined) ? (found as number[]) : undefined;
    }, 'three tasks to run');
    const fdsOf = (pid: number): [number, string][] =>
      readdirSync(`/proc/${pid}/fd`)
        .map(Number)
        .sort((a, b) => a - b)
        .map(fd => [fd, readlinkSync(`/proc/${pid}/fd/${fd}`)]);
    // The commands' processes: 0, 1, 2 only.
    for (const pid of pids) expect(fdsOf(pid).map(([fd]) => fd)).toEqual([0, 1, 2]);
    // The wrappers (bash): beyond 0, 1, 2 only their own pty, never another task's (/dev/ptmx) or the host's.
    // The pid is recorded once a task has run for a second (or with its end: one write fewer per short task).
    const roots = await waitFor(async () => {
      const found = await Promise.all(ids.map(async id => (await ctx.tasks.get(id))?.pid));
      return found.every(p => p !== undefined) ? (found as number[]) : undefined;
    }, "the wrappers' pids in the records");
    for (const pid of roots) {
      const extra = fdsOf(pid).filter(([fd]) => fd > 2);
      expect(extra.filter(([, link]) => !/^\/dev\/pts\/\d+$/.test(link))).toEqual([]);
    }
    for (const id of ids) await runJtm(['kill', '-tid', String(id)], env);
  });

  it('a descriptor the worker inherited (no close-on-exec) does not reach its tasks', async () => {
    // As a shell or slurmstepd may leave one open: fd 200 of the worker, and so of its pty host. (Through a
    // shell, as Node's spawn hands extra descriptors over close-on-exec; and a high one, as Node marks the
    // low inherited ones close-on-exec as it starts.)
    const wenv = testEnv();
    const w = spawn(
      '/bin/bash',
      ['-c', 'exec "$0" "$1" worker -p fid-fd 200>>"$2"', process.execPath, BIN, join(work, 'leaked-fd')],
      { env: wenv, stdio: 'ignore' },
    );
    try {
      await waitWorkers(wenv, 'fid-fd', 1, 50_000);
      const file = join(work, 'fd-task.jsonl');
      writeFileSync(file, JSON.stringify({ command: 'ls /proc/$BASHPID/fd; ls /proc/self/fd' }));
      const r = await runJtm(['submit', '-f', file, '-p', 'fid-fd'], wenv, { cwd: work });
      const [id] = taskIds(r.stdout);
      const wctx = await openTestContext(wenv);
      try {
        expect(
          await waitFor(async () => ((await wctx.tasks.status(id!)) === 4 ? 4 : undefined), 'the task'),
        ).toBe(4);
      } finally {
        await closeContext(wctx);
      }
      // The shell: 0, 1, 2; the command (ls of itself): 0, 1, 2 and the descriptor of the listing it makes.
      const listed = readFileSync(join(wenv['JTM_LOG_DIR']!, 'tasks', `${id}.out`), 'utf8').split('\n');
      expect(listed.filter(Boolean).map(Number)).toEqual([0, 1, 2, 0, 1, 2, 3]);
    } finally {
      w.kill('SIGTERM');
      await new Promise(r => (w.exitCode === null ? w.once('exit', r) : r(null)));
      rmSync(wenv['JTM_LOG_DIR']!, { recursive: true, force: true });
    }
  });

  it("the pty host holds each running task's pty (no hang-up when its shell execs) and lets it go at the end", async () => {
    const hostPid = Number(
      readFileSync(`/proc/${worker.child.pid}/task/${worker.child.pid}/children`, 'latin1')
        .trim()
        .split(' ')[0],
    );
    const ptys = (): string[] =>
      readdirSync(`/proc/${hostPid}/fd`)
        .map(fd => {
          try {
            return readlinkSync(`/proc/${hostPid}/fd/${fd}`);
          } catch {
            return '';
          }
        })
        .filter(link => /^\/dev\/(pts\/\d+|ptmx)$/.test(link));
    const ids = await submit([4721, 4722].map(s => ({ command: `exec sleep ${s}` })));
    await waitFor(
      () => [4721, 4722].every(s => pgrep(['-f', `^sleep ${s}$`]).length > 0) || undefined,
      'both tasks',
    );
    // Each task: its master and its slave side.
    expect(ptys().filter(l => l.startsWith('/dev/pts/'))).toHaveLength(2);
    for (const id of ids) await runJtm(['kill', '-tid', String(id)], env);
    for (const id of ids) expect(await waitFinal(id)).toBe(-4);
    await waitFor(() => ptys().length === 0 || undefined, 'the host to close every pty');
  });

  it('a single command replaces the shell (no fork for it) where no EXIT trap is needed; a syntax error goes to stderr', async () => {
    const [id, bad] = await submit([{ command: 'sleep 4731' }, { command: 'echo before; if then' }]);
    const rec = await waitFor(async () => {
      const r = await ctx.tasks.get(id!);
      return r?.pid !== undefined && r.accounting !== undefined ? r : undefined;
    }, 'the pid in the record');
    // The root is the wrapper (it leads the session: the command does not, adversary 27 F1); below it, the shell
    // in /proc mode (kept to write `times` when the command ends), else the command in its place.
    const command = pgrep(['-f', '^sleep 4731$']);
    expect(command).toHaveLength(1);
    const parentOf = (p: number): number =>
      Number(readFileSync(`/proc/${p}/stat`, 'latin1').split(') ')[1]!.split(' ')[1]);
    expect(rec.accounting === 'procfs' ? parentOf(parentOf(command[0]!)) : parentOf(command[0]!)).toBe(
      rec.pid,
    );
    await runJtm(['kill', '-tid', String(id)], env);
    expect(await waitFinal(bad!)).toBe(-2);
    expect((await ctx.tasks.get(bad!))?.exit_code).toBe(2);
    const err = readFileSync(join(env['JTM_LOG_DIR']!, 'tasks', `${bad}.err`), 'utf8');
    expect(err).toMatch(/syntax error near unexpected token `then'/);
  });

  it("a simple command goes through the static wrapper, with bash's outcome: exact bytes, no extra fd, its cgroup, a missing file, a script without #!", async () => {
    // Built by npm run build where a C compiler exists (CI: always); without it every task takes bash.
    expect(existsSync(join(BIN, '..', '..', 'dist', 'fast', 'jtm-task-exec'))).toBe(true);
    const data = randomBytes(300_000);
    writeFileSync(join(work, 'exact.bin'), data);
    writeFileSync(join(work, 'no-shebang'), 'echo "no shebang $JTM_TASK_ID"\n', { mode: 0o755 });
    const [cat, s1, s2, missing, script, env1] = await submit([
      { command: `/bin/cat ${work}/exact.bin` },
      { command: '/bin/sleep 4751' },
      { command: '/bin/sleep 4752' },
      { command: '/bin/nope-4753 arg' },
      { command: `${work}/no-shebang` },
      { command: '/usr/bin/env' },
    ]);
    const pids = await waitFor(() => {
      const found = [4751, 4752].map(s => pgrep(['-f', `^/bin/sleep ${s}$`])[0]);
      return found.every(p => p !== undefined) ? (found as number[]) : undefined;
    }, 'both sleeps');
    for (const pid of pids) {
      // The command, with 0, 1, 2 only while another task runs.
      expect(readdirSync(`/proc/${pid}/fd`).map(Number).sort()).toEqual([0, 1, 2]);
      expect(readlinkSync(`/proc/${pid}/fd/0`)).toBe('/dev/null');
      const rec = await waitFor(async () => {
        const r = await ctx.tasks.get(pid === pids[0] ? s1! : s2!);
        return r?.pid !== undefined ? r : undefined;
      }, 'the pid in the record');
      // The task's root is the wrapper that waits for the command (the command is its child: adversary 27 F1); a
      // worker that cannot make cgroups (not root: adversary 12 D5) keeps the task's shell between them, whose
      // EXIT trap writes `times` (docs/resources.md).
      const parentOf = (p: number): number =>
        Number(readFileSync(`/proc/${p}/stat`, 'latin1').split(') ')[1]!.split(' ')[1]);
      if (rec.accounting === 'procfs') expect(parentOf(parentOf(pid))).toBe(rec.pid);
      else {
        expect(parentOf(pid)).toBe(rec.pid);
        expect(readFileSync(`/proc/${pid}/cgroup`, 'latin1')).toMatch(/\/jtm-\d+\/task-/);
      }
    }
    const log = (id: number, ext: string): string => join(env['JTM_LOG_DIR']!, 'tasks', `${id}.${ext}`);
    expect(await waitFinal(cat!)).toBe(4);
    expect(sha(readFileSync(log(cat!, 'out')))).toBe(sha(data));
    expect(await waitFinal(missing!)).toBe(-2);
    expect(await ctx.tasks.get(missing!)).toMatchObject({ exit_code: 127, reason: 'command not found' });
    expect(readFileSync(log(missing!, 'err'), 'utf8')).toMatch(/\/bin\/nope-4753: No such file or directory/);
    expect(await waitFinal(script!)).toBe(4);
    expect(readFileSync(log(script!, 'out'), 'utf8')).toBe(`no shebang ${script}\n`);
    expect(await waitFinal(env1!)).toBe(4);
    const vars = readFileSync(log(env1!, 'out'), 'utf8').split('\n');
    expect(vars).toEqual(expect.arrayContaining([`JTM_TASK_ID=${env1}`, '_=/usr/bin/env', `PWD=${work}`]));
    expect(vars.filter(v => /^JTM_(CGROUP_PROCS|CLOSE_FDS)=/.test(v))).toEqual([]);
    for (const id of [s1!, s2!]) await runJtm(['kill', '-tid', String(id)], env);
    for (const id of [s1!, s2!]) expect(await waitFinal(id)).toBe(-4);
  });

  it('a worker whose log directory is unusable refuses to start: one line, exit 1', async () => {
    // A file; and a path under /proc, where a recursive mkdir used to spin silently forever.
    for (const ld of [join(work, 'plain-file'), '/proc/jtm-no-such-dir']) {
      const r = await runJtm(['worker', '-p', 'fid-ld', '-ld', ld], env);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/log directory/);
    }
  });

  it('a command that starts with exec runs (it used to die of SIGHUP: the wrapper holding the pty was replaced)', async () => {
    const ids = await submit([{ command: 'exec sleep 1' }, { command: "exec bash -c 'echo via exec'" }]);
    for (const id of ids) expect(await waitFinal(id)).toBe(4);
    expect(readFileSync(join(env['JTM_LOG_DIR']!, 'tasks', `${ids[1]}.out`), 'utf8')).toBe('via exec\n');
  });
});

describe('the pty host kills its tasks when the worker is gone or stops answering', () => {
  let work = '';
  beforeAll(() => {
    work = tempDir('jtm-wd-');
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** Three tasks, each with a `nohup` child and a `setsid` child; returns the markers of all their processes. */
  const startTasks = async (
    env: Record<string, string>,
    pool: string,
    base: number,
  ): Promise<{ markers: string[]; ids: number[] }> => {
    const markers: string[] = [];
    const lines: string[] = [];
    for (let i = 0; i < 3; i++) {
      const s = base + i * 10;
      markers.push(`sleep ${s}`, `sleep ${s + 1}`, `sleep ${s + 2}`);
      const command = `echo run $$; nohup sleep ${s + 1} >/dev/null 2>&1 & setsid sleep ${s + 2} & sleep ${s}`;
      lines.push(JSON.stringify({ command }));
    }
    // One submit for the three (each CLI start costs seconds on a loaded machine).
    const file = join(work, `${pool}.jsonl`);
    writeFileSync(file, lines.join('\n'));
    const ids = taskIds((await runJtm(['submit', '-f', file, '-p', pool], env, { cwd: work })).stdout);
    await waitFor(
      () => markers.every(m => pgrep(['-f', `^${m}$`]).length > 0) || undefined,
      'all processes up',
    );
    return { markers, ids };
  };
  const alive = (markers: string[]): string[] => markers.filter(m => pgrep(['-f', `^${m}$`]).length > 0);

  it('SIGKILL of the worker pid alone: every process of its 3 tasks is gone, detached ones too', async () => {
    const env = testEnv();
    const w = startJtm(['worker', '-p', 'wd-kill', '--slots', '3'], env);
    try {
      await waitWorkers(env, 'wd-kill', 1, 60_000);
      const { markers } = await startTasks(env, 'wd-kill', 5100);
      process.kill(w.child.pid!, 'SIGKILL');
      await w.exited;
      // Takeover time here: 3 × 500 ms.
      await waitFor(() => alive(markers).length === 0 || undefined, 'task processes to be gone', 5000);
    } finally {
      await w.stop('SIGKILL');
      rmSync(env['JTM_LOG_DIR']!, { recursive: true, force: true });
    }
  });

  it('SIGSTOP of the worker: tasks killed before the takeover time; SIGCONT does not crash it', async () => {
    // Takeover after 3 × 2 s: the watchdog (3.5 s) leaves a clear margin on a loaded machine.
    const env = testEnv({ JTM_HEARTBEAT_INTERVAL: '2s' });
    const ctx = await openTestContext(env);
    const w = startJtm(['worker', '-p', 'wd-stop', '--slots', '3'], env);
    try {
      await waitWorkers(env, 'wd-stop', 1, 60_000);
      const { markers, ids } = await startTasks(env, 'wd-stop', 5200);
      const workerId = (await ctx.tasks.get(ids[0]!))!.worker_id!;
      process.kill(w.child.pid!, 'SIGSTOP');
      // A stopped worker renews nothing: its liveness key (the takeover clock) expires at this time.
      const takeoverAt = Date.now() + (await ctx.redis.pttl(ctx.keys.workerAlive(workerId)));
      await waitFor(() => alive(markers).length === 0 || undefined, 'task processes to be gone', 10_000);
      // The pty host logged when it killed them: before the takeover could start (times of this host's clock).
      // Waited for: the host writes its line as it kills, and the pipe may deliver it after the processes are gone.
      const killLine = await waitFor(
        () =>
          w
            .output()
            .split('\n')
            .find(l => l.includes('no word from the worker')),
        "the pty host's kill line",
        10_000,
      );
      expect((JSON.parse(killLine!) as { time: number }).time).toBeLessThan(takeoverAt);
      process.kill(w.child.pid!, 'SIGCONT');
      // The worker lives on and gives each task back (still its own: nobody took it over), then runs it again.
      for (const id of ids) {
        await waitFor(
          async () => JSON.stringify(await ctx.tasks.events(id)).includes('watchdog'),
          `task ${id} given back after the watchdog`,
        );
      }
      await waitFor(
        async () => (await Promise.all(ids.map(id => ctx.tasks.status(id)))).every(s => s === 2 || s === 3),
        'tasks pending or running again',
      );
      expect((await runJtm(['check-worker', '-p', 'wd-stop'], env)).code).toBe(0);
      expect(w.child.exitCode).toBeNull();
      // The second attempt starts its output afresh, in the file and in the Redis copy: only its own line.
      await waitFor(async () => {
        const r = await ctx.tasks.get(ids[0]!);
        if (!r || r.attempts !== 2 || r.status !== 3) return undefined;
        const entries = await ctx.redis.xrangeBuffer(ctx.keys.taskOutput(ids[0]!), '-', '+');
        const copy = Buffer.concat(entries.map(([, f]) => f[1] as Buffer)).toString();
        // `$$` is the root's pid, or in /proc mode its child's: the root is the wrapper that waits for the shell.
        const shells = [r.pid, ...childPids(r.pid!)];
        return shells.some(p => copy === `run ${p}\n`) || undefined;
      }, 'the Redis copy to hold the second attempt only');
    } finally {
      await w.stop('SIGKILL');
      await closeContext(ctx);
      for (const m of ['5200', '5201', '5202', '5210', '5211', '5212', '5220', '5221', '5222'])
        for (const p of pgrep(['-f', `^sleep ${m}$`])) process.kill(p, 'SIGKILL');
      rmSync(env['JTM_LOG_DIR']!, { recursive: true, force: true });
    }
  });
});
