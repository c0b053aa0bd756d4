/*
 * jtm-task-exec: the wrapper of a task whose command is one simple command (task-argv.ts decides which), in
 * place of the `bash -c` preamble. It does what that preamble does, in the same order, then execs the
 * command's words directly: a bash start per task (≈ 2 ms of CPU on the benchmark machine, more than the
 * command `/bin/true` itself) becomes a small static program's (≈ 0.3 ms). Built by scripts/build-task-exec.mjs
 * (`npm run build`) where a C compiler exists; without it, or where it does not run, every task keeps the
 * bash preamble.
 *
 *   jtm-task-exec STDOUT STDERR COMMAND WORD0 [WORD...]
 *   jtm-task-exec --leave-tty PROGRAM [ARG...]   (the bash preamble's tasks: step 0, then an exec of PROGRAM)
 *
 * 0. leaves the pty as controlling terminal (leave_terminal); with JTM_SUBREAPER, becomes the subreaper of the
 *    task's orphans (become_subreaper; both forms);
 * 1. joins the task's cgroup(s): its pid into each file of JTM_CGROUP_PROCS (errors ignored, as the preamble's
 *    `2>/dev/null`: the worker checks that it joined);
 * 2. raises its OOM score to JTM_OOM_SCORE_ADJ, never lowering it (errors ignored: the score is protection of
 *    the worker, not a condition of the task);
 * 3. closes the descriptors listed in JTM_CLOSE_FDS (the other tasks' pty masters, the host's inherited ones);
 * 4. unsets the three, sends stdout and stderr to their files (as bash's `>|`; an empty STDERR is STDOUT's file,
 *    shared as by `2>&1`), reads stdin from /dev/null; a file that cannot be opened: bash's own message
 *    ("bash: PATH: REASON") on the pty, exit 125;
 * 5. forks, and waits for its child as the task's root (wait_and_report); the child sets what bash would have
 *    set in the command's environment (`_`, SHLVL when absent), and execs WORD0 (a path: the caller only sends
 *    commands whose first word contains a slash, so no PATH search, no builtin, no function). If that exec fails
 *    for any reason (missing, not executable, a script without `#!`), bash runs COMMAND instead, so the outcome
 *    and bash's message are exactly a plain `bash -c`'s.
 *
 * `--check` exits 0 at once: the worker's test that this binary runs on its node.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The task leaves its terminal: the pty stays its session's (the pty host reads what is written there and holds
 * it open while the task lives), but is no longer its controlling terminal, as under Slurm, where a batch
 * step has none. With it as the controlling terminal:
 * - a program that asks it for a password or a yes (getpass, ssh's host key or password prompt, git's
 *   credentials, `rm -i </dev/tty`) waited for ever, its prompt unseen (adversary 10 K1); now /dev/tty cannot
 *   be opened (ENXIO), and such a program fails at once with its message, as under Slurm;
 * - when the task's root (Cromwell's bash script) died of a kill's SIGTERM, the kernel sent SIGHUP to the
 *   whole foreground group, so the tool the script ran was killed within milliseconds instead of getting the
 *   kill's grace to flush and exit (adversary 10 K8).
 * The root leads the session (forkpty's setsid): TIOCNOTTY then also sends SIGHUP (and SIGCONT) to its own
 * group, which is itself alone here; SIGHUP is ignored around the call and given back its disposition.
 * Descriptor 0 is the pty's slave here: forkpty's child starts with 0, 1, 2 on it.
 */
static void leave_terminal(void) {
  struct sigaction ignore, old;
  memset(&ignore, 0, sizeof ignore);
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  if (sigaction(SIGHUP, &ignore, &old) != 0) return;
  if (ioctl(0, TIOCNOTTY) != 0) {
    /* not our terminal: nothing to leave */
  }
  sigaction(SIGHUP, &old, NULL);
}

/*
 * With JTM_SUBREAPER set (a task accounted from /proc: no cgroup holds it), the task's root becomes the
 * subreaper of its descendants: a process whose parent exits (`(setsid cmd &)`, a daemon's double fork) is
 * re-parented to the root, not to init, so it stays in the tree the worker walks — counted, held to the
 * limit, stopped by a kill or a timeout. Found through init, it was the task's only while it kept the task's
 * token in its environment: `setsid env -i …` outlived its task for good (adversary 10 K4). The flag survives
 * the exec of the root's program (the preamble's bash, which ignores children it did not start) and is not
 * inherited by its children. Errors ignored: the worker's token scan stays the fallback.
 */
static void become_subreaper(void) {
  if (getenv("JTM_SUBREAPER") == NULL) return;
  unsetenv("JTM_SUBREAPER");
  if (prctl(PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L) != 0) {
    /* an old kernel (< 3.4): orphans go to init, as without the wrapper */
  }
}

static void join_cgroups(void) {
  const char *list = getenv("JTM_CGROUP_PROCS");
  if (list == NULL || *list == '\0') return;
  char *copy = strdup(list);
  if (copy == NULL) return;
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  char *save = NULL;
  for (char *path = strtok_r(copy, " ", &save); path != NULL; path = strtok_r(NULL, " ", &save)) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (write(fd, pid, (size_t)len) < 0) {
      /* refused: the worker sees the task outside its cgroup and accounts it from /proc */
    }
    close(fd);
  }
  free(copy);
}

/*
 * Writes FILES_OPEN_MARK (one RS byte, 0x1e) on the pty once the output files are open, and closes it: what the pty
 * carried before it is the wrapper's or bash's own message about a file it could not open (the task's reason,
 * exit 125); after it, the command's, which must not be taken for one (adversary 36 M1: a command that wrote
 * "bash: /zz: No space left on device" to its parent's pty and exited 125 got that as its reason and rc 126).
 * The same byte as the preamble's (task-argv.ts).
 */
static void files_open_mark(int pty) {
  if (pty < 0) return;
  if (write(pty, "\036", 1) < 0) {
    /* the pty is gone: the task's end is decided without it */
  }
  close(pty);
}

static void raise_oom_score(void) {
  const char *want = getenv("JTM_OOM_SCORE_ADJ");
  if (want == NULL || *want == '\0') return;
  long wanted = strtol(want, NULL, 10);
  int fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  char now[16] = {0};
  ssize_t n = read(fd, now, sizeof now - 1);
  if (n > 0 && strtol(now, NULL, 10) < wanted) {
    char text[16];
    int len = snprintf(text, sizeof text, "%ld\n", wanted);
    if (pwrite(fd, text, (size_t)len, 0) < 0) {
      /* refused: the task runs with the score it inherited */
    }
  }
  close(fd);
}

static void close_listed(void) {
  const char *list = getenv("JTM_CLOSE_FDS");
  if (list == NULL) return;
  for (const char *p = list; *p != '\0';) {
    char *end;
    long fd = strtol(p, &end, 10);
    if (end == p) break;
    if (fd > 2) close((int)fd);
    p = end;
    while (*p == ' ') p++;
  }
}

/* Opens `path` onto descriptor `target`, or prints bash's message and exits 125 (REDIRECT_FAILED). */
static void redirect(const char *path, int flags, int target) {
  int fd = open(path, flags, 0666);
  if (fd < 0) {
    dprintf(2, "bash: %s: %s\n", path, strerror(errno));
    _exit(125);
  }
  if (fd != target) {
    dup2(fd, target);
    close(fd);
  }
}

/*
 * The command (or the preamble's shell) runs as the wrapper's child, not in its place: the wrapper leads the
 * task's session and group (forkpty's setsid), and a command that leads them cannot leave them: `setsid CMD`
 * forked, its parent exited 0 at once, and the real command, killed as a leftover 2 s later, ended the task
 * `success` whatever it would have done (adversary 27 F1: a script that exits 3 after 5 s); `setpgid(0, 0)` and
 * `setsid()` failed with EPERM. A child of the leader is in the group, not leading it, as a command under a plain
 * `bash -c` started by a non-interactive parent is: `$$` is not the group (docs/resources.md).
 *
 * /proc mode (JTM_TIMES_FILE set): the largest resident size any process of the task reached, as the kernel
 * keeps it for a parent that waits. A process that lived and died between two of the worker's watches took its
 * high-water mark with it: a 413 MB burst of 0.6 s under a 350 MB limit ended `success` with a 3–338 MB peak
 * (adversary 21 F1). So the wrapper forks the task's shell and waits for it: wait4's usage of the shell holds
 * the largest high-water mark of the shell and of every process it (or a process it reaped) waited for — what
 * `/usr/bin/time` prints as "maximum resident set size". It appends `maxrss <KiB>` to the times file, after the
 * shell's EXIT trap wrote there, and ends as the shell ended (its exit code, or its signal).
 *
 * The wrapper stays the task's root (the pty host's child, the session and group leader: the shell stays in its
 * group, where the worker's and the pty host's group kills reach it; leading a group of its own, it escaped the
 * pty host's kill of a dead worker's tasks). It passes on to the shell every signal it gets — a TERM by hand to
 * the recorded pid, one that came before the shell existed (pending on the wrapper alone; a kill during the
 * spawn) — waiting for them with every signal blocked: it never dies of one (SIGKILL aside) before the shell has
 * ended, so it can report the shell's end as it was. A signal to the group reaches the shell twice (directly and
 * passed on), as the worker's kills already send it to a group and to each of its processes. The shell, not the
 * wrapper, becomes the subreaper (after the fork): orphans are the shell's children as before, listed by its
 * trap. `$$` is not the group in this mode (docs/resources.md).
 */
/* What the wrapper's child runs: never returns. */
typedef void (*child_fn)(char **argv);

/* The `--leave-tty` form's child: PROGRAM [ARG...] (the bash preamble). */
static void exec_program(char **argv) {
  become_subreaper();
  execv(argv[0], argv);
  dprintf(2, "jtm-task-exec: %s: %s\n", argv[0], strerror(errno));
  _exit(126);
}

/* The simple form's child: COMMAND WORD0 [WORD...]: the words, else bash runs COMMAND (bash's own outcome). */
static void exec_words(char **argv) {
  become_subreaper();
  setenv("_", argv[1], 1);
  setenv("SHLVL", "0", 0);
  execv(argv[1], argv + 1);
  /* As bash would run it, with bash's own outcome and messages. */
  execl("/bin/bash", "bash", "-c", argv[0], (char *)NULL);
  dprintf(2, "bash: %s: %s\n", argv[1], strerror(errno));
  _exit(127);
}

static int wait_and_report(child_fn run, char **argv) {
  const char *times = getenv("JTM_TIMES_FILE");
  /* The other tasks' pty masters and the host's inherited descriptors: the wrapper lives as long as the task
     and must not hold them either (the shell's preamble then finds none to close). */
  close_listed();
  unsetenv("JTM_CLOSE_FDS");
  const char *by = getenv("JTM_SIGNALLER_PID");
  pid_t signaller = by != NULL ? (pid_t)atol(by) : 0;
  unsetenv("JTM_SIGNALLER_PID");
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  /* An inherited SIG_IGN would have the kernel reap the shell itself: wait4 would find no child. */
  signal(SIGCHLD, SIG_DFL);
  pid_t child = fork();
  if (child <= 0) {
    /* The child; or no process to spare: the command runs in place of the wrapper (a session leader, without the
       figure), as before the wrapper forked. */
    sigprocmask(SIG_SETMASK, &old, NULL);
    run(argv);
  }
  unsetenv("JTM_SUBREAPER");
  /* The worker's pid (JTM_SIGNALLER_PID), read before the fork and unset in the command's environment. */
  int status = 0;
  struct rusage usage;
  memset(&usage, 0, sizeof usage);
  for (;;) {
    pid_t done = wait4(child, &status, WNOHANG, &usage);
    if (done == child) break;
    if (done < 0 && errno != EINTR) {
      dprintf(2, "jtm-task-exec: waiting for the task's shell: %s\n", strerror(errno));
      return 126;
    }
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    /* Not what the worker sent: it signals every process of the task itself, the shell too (its group, or its
       pid), and passed on, the shell got a TERM twice and ran its TERM trap twice on a loaded node. */
    if (sig > 0 && sig != SIGCHLD && !(signaller > 0 && info.si_code == SI_USER && info.si_pid == signaller))
      kill(child, sig);
  }
  if (times != NULL && *times != '\0') {
    int fd = open(times, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      /* And the CPU of the same processes, exact: the shell's `times` is none when the command was exec'd in
         its place (a time the worker's last look had not seen was lost: 1.14 s of 1.5 s, adversary 23 F9). */
      dprintf(fd, "maxrss %ld\ncpu %ld.%06ld %ld.%06ld\n", usage.ru_maxrss, (long)usage.ru_utime.tv_sec,
              (long)usage.ru_utime.tv_usec, (long)usage.ru_stime.tv_sec, (long)usage.ru_stime.tv_usec);
      close(fd);
    }
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    /* Ends by the same signal, so that the worker reads the same outcome; no core dump of the wrapper (a piped
       core_pattern ignores RLIMIT_CORE: not dumpable is what stops it). */
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L);
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    return 128 + sig;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 126;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--check") == 0) return 0;
  if (argc >= 3 && strcmp(argv[1], "--leave-tty") == 0) {
    leave_terminal();
    /* bash, as it starts, opens the terminal its stdin is (by name, without O_NOCTTY): a session leader without
       a controlling terminal would take it back. Its input is /dev/null anyway (the preamble's first redirect). */
    redirect("/dev/null", O_RDONLY, 0);
    /* The wrapper is the task's root, which the worker looks for in the task's cgroup: it joins before the fork
       (the shell, its child, is born there; the preamble's own join of `$$` then changes nothing). */
    join_cgroups();
    return wait_and_report(exec_program, argv + 2);
  }
  if (argc < 5) {
    dprintf(2, "jtm-task-exec: usage: jtm-task-exec STDOUT STDERR COMMAND WORD0 [WORD...]\n");
    return 125;
  }
  leave_terminal();
  join_cgroups();
  raise_oom_score();
  close_listed();
  unsetenv("JTM_CGROUP_PROCS");
  unsetenv("JTM_CLOSE_FDS");
  unsetenv("JTM_OOM_SCORE_ADJ");
  /* As bash's `>|`, not `>>`: a command that seeks on its stdout (a WAV writer fixing its header, `dd seek=`)
     writes where it seeks, as under a plain `bash -c … > file` (adversary 31 F2: appended, the file came out
     different and the task `success`). An empty STDERR: the same file as STDOUT, shared as by `2>&1` (two
     descriptions of one file, each at its own offset, would write over each other). */
  /* The pty, kept to say that the files are open (files_open_mark): a failure is said on it before that. */
  int pty = fcntl(2, F_DUPFD_CLOEXEC, 3);
  redirect(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 1);
  if (argv[2][0] == '\0')
    dup2(1, 2);
  else
    redirect(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 2);
  redirect("/dev/null", O_RDONLY, 0);
  files_open_mark(pty);
  return wait_and_report(exec_words, argv + 3);
}
