/** Messages between the worker and its pty host (pty-host.ts), over the child-process IPC channel. */
export type WorkerMessage =
  | {
      /** First message: the environment common to the worker's tasks (each spawn brings only the differences). */
      t: 'init';
      env: Record<string, string>;
    }
  | {
      t: 'spawn';
      id: number;
      file: string;
      args: string[];
      cwd: string;
      /** Variables that differ from the host's own environment (the worker's first task's), and ones to drop. */
      env: Record<string, string>;
      unset: string[];
    };

export type HostMessage =
  | { t: 'spawned'; id: number; pid: number }
  | { t: 'error'; id: number; message: string }
  | { t: 'data'; id: number; chunk: string }
  | { t: 'exit'; id: number; exitCode: number; signal: number };
