// The static wrapper of simple commands (src/worker/task-exec.c), run directly: what the bash preamble of
// task-run.ts does, it must do too (the worker uses it only for commands whose first word is a path).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { FILES_OPEN_MARK, taskScript } from '../../src/worker/task-argv.js';
import { tempDir } from '../helpers/env.js';

const WRAPPER = fileURLToPath(new URL('../../dist/fast/jtm-task-exec', import.meta.url));
const work = tempDir('jtm-task-exec-');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs the wrapper through a shell that leaves fds 7 and 200 open (no close-on-exec), as a host may. */
function run(
  out: string,
  err: string,
  words: string[],
  env: Record<string, string> = {},
): { code: number | null; pty: string } {
  const r = spawnSync(
    '/bin/bash',
    ['-c', 'exec "$@" 7>/dev/null 200>/dev/null', 'bash', WRAPPER, out, err, words.join(' '), ...words],
    { env: { PATH: '/usr/bin:/bin', ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return { code: r.status, pty: r.stdout + r.stderr };
}

describe('jtm-task-exec', () => {
  it('is built by npm run build and answers --check', () => {
    expect(existsSync(WRAPPER)).toBe(true);
    expect(spawnSync(WRAPPER, ['--check']).status).toBe(0);
  });

  it('joins its cgroups, closes the listed descriptors, unsets both, opens its files as >| does, gives no stdin', () => {
    const procs = [join(work, 'a.procs'), join(work, 'b.procs')];
    for (const p of procs) writeFileSync(p, '');
    const out = join(work, 'out');
    // Emptied, not appended to (adversary 31 F2: a command that seeks on its stdout must write where it seeks).
    writeFileSync(out, 'an earlier content\n');
    const r = run(out, join(work, 'err'), ['/bin/bash', join(work, 'show.sh')], {
      JTM_CGROUP_PROCS: procs.join(' '),
      JTM_CLOSE_FDS: '7 200',
    });
    // Nothing on the pty but the mark that the files are open (FILES_OPEN_MARK).
    expect(r).toEqual({ code: 0, pty: FILES_OPEN_MARK });
    const shown = readFileSync(out, 'utf8').split('\n');
    const pid = shown[0];
    expect(pid).toMatch(/^\d+$/);
    for (const p of procs) expect(readFileSync(p, 'utf8')).toBe(`${pid}\n`);
    // The descriptors of a process the command starts: not the listed ones (the test runner's own may be there).
    const fds = shown.slice(1, shown.indexOf('unset'));
    expect(fds).toEqual(expect.arrayContaining(['0', '1', '2']));
    expect(fds.filter(fd => fd === '7' || fd === '200')).toEqual([]);
    expect(shown.slice(shown.indexOf('unset'))).toEqual(['unset', 'stdin /dev/null', '']);
    expect(readFileSync(join(work, 'err'), 'utf8')).toBe('to stderr\n');
  });

  it("an empty STDERR is stdout's file, shared as 2>&1 shares it: both streams in the order written", () => {
    const out = join(work, 'shared.out');
    const script = join(work, 'both.sh');
    writeFileSync(script, 'echo one; echo two >&2; echo three; echo four >&2\n');
    expect(run(out, '', ['/bin/bash', script])).toEqual({ code: 0, pty: FILES_OPEN_MARK });
    expect(readFileSync(out, 'utf8')).toBe('one\ntwo\nthree\nfour\n');
  });

  it('runs the command as its child, not the session leader: `setsid CMD` runs CMD in place and ends as it ends (adversary 27 F1)', () => {
    // As the leader, util-linux setsid forked, its parent exited 0 at once and the script was left behind.
    const script = join(work, 'exit3.sh');
    writeFileSync(script, '#!/bin/bash\nsleep 0.3\necho "done $$"\nexit 3\n', { mode: 0o755 });
    const out = join(work, 'setsid.out');
    const r = spawnSync(
      '/usr/bin/setsid',
      [
        '--wait',
        WRAPPER,
        out,
        join(work, 'setsid.err'),
        `/usr/bin/setsid ${script}`,
        '/usr/bin/setsid',
        script,
      ],
      { env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' },
    );
    expect(r.status).toBe(3);
    expect(readFileSync(out, 'utf8')).toMatch(/^done \d+\n$/);
  });

  it("a file it cannot open: bash's message on the pty, exit 125; a missing command: bash's outcome, 127", () => {
    const r = run(join(work, 'no', 'such', 'dir'), join(work, 'err2'), ['/bin/true']);
    expect(r).toEqual({
      code: 125,
      pty: `bash: ${join(work, 'no', 'such', 'dir')}: No such file or directory\n`,
    });
    const missing = run(join(work, 'out3'), join(work, 'err3'), ['/bin/nope-42', 'x']);
    expect(missing.code).toBe(127);
    expect(readFileSync(join(work, 'err3'), 'utf8')).toBe(
      'bash: line 1: /bin/nope-42: No such file or directory\n',
    );
  });

  it('raises its OOM score to JTM_OOM_SCORE_ADJ, never lowers it, and unsets it (as the bash preamble)', () => {
    // The command prints its own score and whether the variable reached it.
    const show = 'cat /proc/self/oom_score_adj; echo "${JTM_OOM_SCORE_ADJ-unset}"';
    const outcome = (inherited: number, wanted: string, bash: boolean): string => {
      const out = join(work, `oom-${inherited}-${wanted}-${bash}`);
      const argv = bash
        ? ['/bin/bash', '-c', taskScript(show), 'bash', out, `${out}.err`]
        : [
            WRAPPER,
            out,
            `${out}.err`,
            `/bin/bash ${join(work, 'oom.sh')}`,
            '/bin/bash',
            join(work, 'oom.sh'),
          ];
      const r = spawnSync(
        '/bin/bash',
        ['-c', `echo ${inherited} >/proc/self/oom_score_adj && exec "$@"`, 'bash', ...argv],
        { env: { PATH: '/usr/bin:/bin', JTM_OOM_SCORE_ADJ: wanted }, encoding: 'utf8' },
      );
      expect(r.status).toBe(0);
      return readFileSync(out, 'utf8');
    };
    writeFileSync(join(work, 'oom.sh'), `${show}\n`);
    for (const bash of [false, true]) {
      expect(outcome(0, '500', bash)).toBe('500\nunset\n');
      expect(outcome(700, '500', bash)).toBe('700\nunset\n');
      expect(outcome(100, '', bash)).toBe('100\nunset\n');
    }
  });
});

describe('a task accounted from /proc (JTM_SUBREAPER, JTM_TIMES_FILE)', () => {
  it("its EXIT trap leaves the command's exit status alone, under set -e and an ERR trap too", () => {
    // The trap's `read` of the children file (no newline) returns 1: with `set -e` every task exited 1, and an
    // ERR trap ran at the end (review of the subreaper change).
    for (const [command, code] of [
      ['set -e; true', 0],
      ['set -euo pipefail; echo ok >/dev/null', 0],
      ['set -e; exit 3', 3],
      ["trap 'exit 2' ERR; true", 0],
      ['(sleep 30 &); set -e; true', 0],
    ] as const) {
      const out = join(work, 'status.out');
      const times = join(work, 'status.times');
      const r = spawnSync(
        WRAPPER,
        ['--leave-tty', '/bin/bash', '-c', taskScript(command), 'bash', out, `${out}.err`],
        { env: { PATH: '/usr/bin:/bin', JTM_SUBREAPER: '1', JTM_TIMES_FILE: times }, stdio: 'ignore' },
      );
      expect([command, r.status]).toEqual([command, code]);
      expect(readFileSync(times, 'utf8')).toMatch(/^children [\d.]+ ?[\d ]*$/m);
    }
    spawnSync('pkill', ['-f', '^sleep 30$']);
  });

  /** The wrapper in /proc mode around `command`'s shell: its result, and what it and the shell wrote. */
  const wrapped = (command: string, name: string) => {
    const out = join(work, `${name}.out`);
    const times = join(work, `${name}.times`);
    const r = spawnSync(
      WRAPPER,
      ['--leave-tty', '/bin/bash', '-c', taskScript(command), 'bash', out, `${out}.err`],
      // A session of its own, as a task's root leads one (the row's `kill 0` must not reach the test): Node's
      // spawnSync takes `detached` as spawn does (spawn_sync.cc), though its type does not list it.
      {
        env: { PATH: '/usr/bin:/bin', JTM_SUBREAPER: '1', JTM_TIMES_FILE: times },
        encoding: 'utf8',
        ...{ detached: true },
      },
    );
    return { r, out: readFileSync(out, 'utf8'), times: readFileSync(times, 'utf8') };
  };

  it('its wrapper adds the largest high-water mark of a process the shell waited for (adversary 21 F1)', () => {
    // A 200 MB process that lived a moment, long gone when the shell exits.
    const { r, times } = wrapped("python3 -c 'x = bytearray(200 << 20)'; exit 7", 'maxrss');
    expect(r.status).toBe(7);
    const kib = Number(/^maxrss (\d+)$/m.exec(times)?.[1]);
    expect(kib).toBeGreaterThanOrEqual(200 * 1024);
    expect(kib).toBeLessThan(260 * 1024);
  });

  it('its wrapper ends as the shell ended: by the same signal, and after the shell when the group is signalled', () => {
    expect(wrapped('kill -USR1 $$', 'signal').r.signal).toBe('SIGUSR1');
    // A stop's TERM reaches the whole group, the wrapper included: it waits for the shell, whose trap decides.
    const { r } = wrapped("trap 'sleep 0.3; exit 3' TERM; kill -TERM 0; sleep 5 & wait", 'group');
    expect([r.status, r.signal]).toEqual([3, null]);
  });

  it('a signal to the wrapper reaches the shell (review of s15)', async () => {
    // A TERM by hand to the task's recorded pid (the wrapper) is passed on: the shell's trap decides the end.
    const outFile = join(work, 'forward.out');
    const times = join(work, 'forward.times');
    const command = "trap 'echo got TERM; exit 5' TERM; echo up; sleep 10 & wait";
    const child = spawn(
      WRAPPER,
      ['--leave-tty', '/bin/bash', '-c', taskScript(command), 'bash', outFile, `${outFile}.err`],
      {
        env: { PATH: '/usr/bin:/bin', JTM_SUBREAPER: '1', JTM_TIMES_FILE: times },
        detached: true,
        stdio: 'ignore',
      },
    );
    const ended = new Promise<[number | null, NodeJS.Signals | null]>(res =>
      child.on('exit', (code, signal) => res([code, signal])),
    );
    for (let i = 0; i < 200 && !(existsSync(outFile) && readFileSync(outFile, 'utf8').includes('up')); i++)
      await new Promise(r => setTimeout(r, 20));
    process.kill(child.pid!, 'SIGTERM');
    expect(await ended).toEqual([5, null]);
    expect(readFileSync(outFile, 'utf8')).toBe('up\ngot TERM\n');
    spawnSync('pkill', ['-f', '-x', 'sleep 10', '-s', String(child.pid)]);
  });

  it('its shell adopts the orphans of its tree and lists them, with the time since boot, as it exits', () => {
    // Adversary 10 K4: `(setsid env -i cmd &)` was re-parented to init before any walk of the tree saw it, and
    // carried no token: it outlived its task. The wrapper makes the shell their subreaper; the EXIT trap lists
    // them for the worker (a child born after the last walk).
    const out = join(work, 'reaper.out');
    const times = join(work, 'reaper.times');
    const marker = `sleep 47${process.pid % 100}`;
    const command = `(setsid env -i /bin/${marker} &); sleep 0.3; echo $$; ps -o ppid= -p $(pgrep -fx '/bin/${marker}') | tr -d ' '; echo "$JTM_SUBREAPER"`;
    const r = spawnSync(
      WRAPPER,
      ['--leave-tty', '/bin/bash', '-c', taskScript(command), 'bash', out, `${out}.err`],
      {
        env: { PATH: '/usr/bin:/bin', JTM_SUBREAPER: '1', JTM_TIMES_FILE: times },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const orphan = spawnSync('pgrep', ['-fx', `/bin/${marker}`], { encoding: 'utf8' }).stdout.trim();
    try {
      expect(r.status).toBe(0);
      // Its parent while the shell lived: the shell itself (the wrapper's child, which waits for it), not init.
      const [shell, parent, flag] = readFileSync(out, 'utf8').split('\n');
      expect([parent, flag]).toEqual([shell, '']);
      expect(Number(shell)).not.toBe(r.pid);
      const listed = /^children ([\d.]+) (\d+(?: \d+)*)$/m.exec(readFileSync(times, 'utf8'));
      expect(listed?.[2]).toBe(orphan);
      const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
      expect(Number(listed?.[1])).toBeLessThanOrEqual(uptime);
      expect(Number(listed?.[1])).toBeGreaterThan(uptime - 10);
    } finally {
      if (orphan) spawnSync('kill', [orphan]);
    }
  });
});

mkdirSync(work, { recursive: true });
writeFileSync(
  join(work, 'show.sh'),
  [
    // The wrapper joins the cgroups and forks the command: its pid is the command's parent's.
    'echo $PPID',
    'ls /proc/self/fd',
    'echo "${JTM_CGROUP_PROCS-unset}${JTM_CLOSE_FDS-}"',
    'echo "stdin $(readlink /proc/$$/fd/0)"',
    'echo to stderr >&2',
  ].join('\n'),
);
