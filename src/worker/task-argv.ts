import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { TIMES_FILE_VAR } from './accounting.js';

/*
 * The task's command runs as `bash -c`, after one line of preamble that:
 * - moves the shell into the task's cgroup(s), named by JTM_CGROUP_PROCS (accounting.ts), so that everything
 *   the command starts is counted and limited there;
 * - raises its OOM score to JTM_OOM_SCORE_ADJ (never lowers it; task-environment.ts says why), inherited by
 *   everything the command starts;
 * - closes the descriptors above 2 that the pty host names in JTM_CLOSE_FDS: node-pty's fork keeps the host's
 *   descriptors that lack close-on-exec, which are the pty masters of the other running tasks (a task holding
 *   them keeps their ptys from hanging up) and whatever the host itself inherited (pty-host.ts);
 * - sends stdout and stderr straight to their files, so the bytes go from the command to the kernel with
 *   nothing in between: exact for any size and any bytes (binary, CR LF, NUL), under any load, and complete
 *   once the processes have exited. Opened as by `>|` (not `>>`): a command that seeks on its stdout writes where
 *   it seeks, as under a plain `bash -c … > file` (adversary 31 F2); stderr given as '' is stdout's file, shared as
 *   by `2>&1` (two opens of one file write over each other). The pty stays for the session and the job control, and carries only
 *   what bash prints itself (if an open fails: exit 125 with bash's message, the task's reason); once both files
 *   are open it writes FILES_OPEN_MARK there, so that text a command writes to the pty later is never taken
 *   for that message;
 * - gives the command no input, so a command that reads stdin sees EOF instead of hanging (and it has no
 *   controlling terminal to read either: the wrapper in front of bash leaves it, task-exec.c leave_terminal);
 * - without a cgroup, writes bash's `times` to JTM_TIMES_FILE when the shell exits (an EXIT trap: the CPU of
 *   every child it reaped, which /proc loses once the shell is reaped; the wrapper that waited for the shell
 *   then adds the largest high-water mark among them, task-exec.c wait_and_report), and its children then: the orphans it
 *   was the subreaper of (task-exec.c become_subreaper), with the time since boot when they were listed. The
 *   trap runs under the command's own options and traps: it must not fail (`|| :`), or `set -e` made every task
 *   exit 1 and an ERR trap fired at its end (`read` of the children file, which has no newline, returns 1).
 * The command follows on the next line, so bash parses and runs it only after the preamble has run (a syntax
 * error in it is reported in the stderr file), and, where no trap is set, execs its last simple command in
 * place of the shell: no fork for a single command, as with a plain `bash -c`. Bash's messages about the command
 * text therefore count one line more than a plain `bash -c` would. Nothing of the shell needs to outlive the
 * command: the pty host holds the pty's slave side open while the task lives (pty-host.ts), so a command that
 * starts with `exec`, or the exec of the last command, does not hang up the pty.
 */
const PREAMBLE =
  'for __jtm_f in $JTM_CGROUP_PROCS; do echo $$ >"$__jtm_f"; done 2>/dev/null; ' +
  '[ -z "$JTM_OOM_SCORE_ADJ" ] || { read -r __jtm_f </proc/self/oom_score_adj; ' +
  '[ "$__jtm_f" -ge "$JTM_OOM_SCORE_ADJ" ] || echo "$JTM_OOM_SCORE_ADJ" >/proc/self/oom_score_adj; } 2>/dev/null; ' +
  'for __jtm_f in $JTM_CLOSE_FDS; do exec {__jtm_f}>&-; done; ' +
  'unset JTM_CGROUP_PROCS JTM_CLOSE_FDS JTM_OOM_SCORE_ADJ JTM_SUBREAPER JTM_SIGNALLER_PID __jtm_f; ' +
  'exec {__jtm_t}>&2; exec >|"$1" </dev/null || exit 125; if [ -n "$2" ]; then exec 2>|"$2" || exit 125; ' +
  'else exec 2>&1; fi; printf "\\036" >&$__jtm_t; exec {__jtm_t}>&-; unset __jtm_t; set --; ' +
  '__jtm_times=$JTM_TIMES_FILE; unset JTM_TIMES_FILE; [ -z "$__jtm_times" ] || trap \'{ times; ' +
  'read -r __jtm_f </proc/$$/task/$$/children; read -r __jtm_u </proc/uptime; ' +
  'echo "children ${__jtm_u%% *} $__jtm_f"; } >"$__jtm_times" 2>/dev/null || :\' EXIT';

export { FILES_OPEN_MARK } from './pty-protocol.js';

/** The `bash -c` script of a task: the preamble, then the command on its own lines. */
export function taskScript(command: string): string {
  return `${PREAMBLE}\n${command}`;
}

/** A word bash takes as it is: no quoting, expansion, globbing, redirection, comment or control operator. */
const PLAIN_WORD = '[A-Za-z0-9_./,:=+@%-]+';
const SIMPLE_COMMAND = new RegExp(`^ *(${PLAIN_WORD}(?: +${PLAIN_WORD})*) *$`);
/** Variables that change what bash does before the command: sourced files, options, exported functions. */
const BASH_STARTUP = /^(BASH_ENV|ENV|SHELLOPTS|BASHOPTS|BASH_FUNC_.*)$/;

/**
 * The words of a command that bash would run as one exec of its first word, or undefined: plain words only,
 * the first a path (a slash: no PATH search, no builtin, keyword, alias or assignment) — Cromwell's
 * `/bin/bash /…/script`, a benchmark's `/bin/true`. Not when the environment would change what bash does
 * first (BASH_ENV is sourced by a non-interactive bash, SHELLOPTS may turn on xtrace, an exported function may
 * carry a path as its name).
 */
export function simpleCommandWords(
  command: string,
  env: Readonly<Record<string, string | undefined>>,
): string[] | undefined {
  const m = SIMPLE_COMMAND.exec(command);
  if (!m) return undefined;
  const words = (m[1] as string).split(/ +/);
  const first = words[0] as string;
  if (!first.includes('/') || first.includes('=')) return undefined;
  // /proc/self/exe and its kin name the process that runs them: bash under bash, the wrapper here (adversary
  // 27 F4: `/proc/self/exe --version` printed the wrapper's usage, exit 125, where bash prints its version).
  if (/^\/proc\/(self|thread-self|\d+)\//.test(first) || /^\/dev\/fd\//.test(first)) return undefined;
  for (const k of Object.keys(env)) if (BASH_STARTUP.test(k)) return undefined;
  return words;
}

/** The static wrapper of simple commands (task-exec.c), built beside the module that uses it. */
const TASK_EXEC = fileURLToPath(new URL('./jtm-task-exec', import.meta.url));
/** The wrapper, once it is known to exist and run on this node (null: it does not; undefined: not known yet). */
let taskExec: string | null | undefined;
let checking = false;

/**
 * Checks, once per worker and without blocking it, that the wrapper runs on this node (`--check`): a binary
 * built for another architecture, or a node that forbids it, means bash. Tasks started before the answer
 * take bash. The worker calls this as it starts.
 */
export function checkTaskExec(): void {
  if (taskExec !== undefined || checking) return;
  checking = true;
  if (!existsSync(TASK_EXEC)) {
    taskExec = null;
    return;
  }
  execFile(TASK_EXEC, ['--check'], { timeout: 10_000 }, err => {
    taskExec = err ? null : TASK_EXEC;
  });
}

function taskExecPath(): string | undefined {
  checkTaskExec();
  return taskExec ?? undefined;
}

/**
 * The argv the pty host starts for a task: the static wrapper with the command's words when the command is
 * simple and nothing needs bash's own preamble (the /proc mode's `times` trap), else `bash -c` with the
 * preamble. Both do the same before the command and leave the same outcome (task-exec.c).
 */
export function taskArgv(
  command: string,
  stdoutPath: string,
  stderrPath: string,
  env: Readonly<Record<string, string | undefined>>,
  wrapper: () => string | undefined = taskExecPath,
): string[] {
  const words = env[TIMES_FILE_VAR] === undefined ? simpleCommandWords(command, env) : undefined;
  const exec = wrapper();
  if (words && exec) return [exec, stdoutPath, stderrPath, command, ...words];
  const bash = ['/bin/bash', '-c', taskScript(command), 'bash', stdoutPath, stderrPath];
  // The wrapper first, for what bash cannot do: leave the pty as controlling terminal (task-exec.c). Without it
  // (no C compiler at install), a read of /dev/tty waits and a root's death hangs up its group (docs/architecture.md).
  return exec ? [exec, '--leave-tty', ...bash] : bash;
}
