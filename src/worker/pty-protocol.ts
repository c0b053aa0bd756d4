/** Messages between the worker and its pty host (pty-host.ts), over the child-process IPC channel. */

/**
 * The variable through which the pty host names, to a task's shell, the descriptors above 2 that the task
 * inherited and must close (task-argv.ts's preamble closes them and unsets it).
 */
export const CLOSE_FDS_VAR = 'JTM_CLOSE_FDS';
/** The `cgroup.procs` files a task's shell moves itself into (accounting.ts); the host kills what they hold too. */
export const CGROUP_PROCS_VAR = 'JTM_CGROUP_PROCS';
/**
 * What the wrapper (task-exec.c files_open_mark) and the preamble (task-argv.ts) write on the pty once the output
 * files are open: text before it is theirs (why a file could not be opened, why the command could not start),
 * text after it the command's.
 */
export const FILES_OPEN_MARK = '\x1e';
/**
 * How much of the text before FILES_OPEN_MARK the host keeps for the exit's report (its end: the message). Room
 * for bash's message about an output path of PATH_MAX (4 KB) and more: at 2 KB, the start of the message about a
 * 2,000-byte path was cut, and the task got `exit code 125` and rc 125 instead of the reason and rc 126
 * (adversary 41 F1).
 */
export const PTY_TEXT_MAX = 16384;
export type WorkerMessage =
  | {
      /** First message: the environment common to the worker's tasks (each spawn brings only the differences). */
      t: 'init';
      env: Record<string, string>;
      /**
       * The watchdog: with no `ping` for this long, the host kills every task's process tree (the worker is
       * stopped or hung; another worker may take its tasks over). Shorter than the takeover time.
       */
      watchdogMs?: number;
    }
  | { t: 'ping' }
  | {
      t: 'spawn';
      id: number;
      file: string;
      args: string[];
      cwd: string;
      /** Variables that differ from the host's own environment (the worker's first task's), and ones to drop. */
      env: Record<string, string>;
      unset: string[];
      /** The task's JTM_TASK_TOKEN: finds its detached processes when the host must kill them. */
      token: string;
      /**
       * Time (the node's monotonic clock, monotonic.ts: the worker's and the host's) after which the task must not start: the worker's lease may lapse soon after (heartbeat.ts)
       * and another worker take the task over. The host refuses a request it handles later (the worker was
       * stopped between its own check and the send, or the whole tree was frozen and resumed).
       */
      deadline?: number;
    };

export type HostMessage =
  /** The answer to each `ping`: the worker kills a host that stopped answering (stopped, hung). */
  | { t: 'pong' }
  /** `start`: the root's start time (/proc), read by the host at the fork: what keys the task's tree. */
  | { t: 'spawned'; id: number; pid: number; start?: number }
  /** `expired`: refused because the request's deadline had passed; nothing was started. */
  | { t: 'error'; id: number; message: string; expired?: boolean }
  /**
   * `watchdog`: the host killed the task because the worker stopped answering. `filesOpen`: FILES_OPEN_MARK
   * came; `text`: what came on the pty before it (its last PTY_TEXT_MAX characters). The rest of the pty's
   * output is read and dropped by the host: no message per chunk, and a task writing to its terminal without end
   * costs the worker nothing.
   */
  | {
      t: 'exit';
      id: number;
      exitCode: number;
      signal: number;
      watchdog?: boolean;
      filesOpen?: boolean;
      text?: string;
    };
