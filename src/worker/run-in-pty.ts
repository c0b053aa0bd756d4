import { spawn } from 'node-pty';

/** The only user of node-pty: a command in a pseudo-terminal, in its own session and process group. */
export interface PtyProcess {
  readonly pid: number;
  /** Resolves when the command has exited (signal: the number of the signal that ended it, else 0). */
  readonly exited: Promise<{ exitCode: number; signal: number }>;
}

export interface PtyOptions {
  cwd: string;
  env: Record<string, string>;
  /** Called with each chunk of output, as UTF-8 text. */
  onOutput: (chunk: string) => void;
}

/** Starts argv[0] with argv[1..] in a new pty; throws if it cannot be started (e.g. missing cwd). */
export function runInPty(argv: readonly string[], opts: PtyOptions): PtyProcess {
  const [file, ...args] = argv;
  if (!file) throw new Error('empty command line');
  const pty = spawn(file, args, {
    name: 'xterm',
    cols: 200,
    rows: 50,
    cwd: opts.cwd,
    env: opts.env,
    encoding: 'utf8',
  });
  const exited = new Promise<{ exitCode: number; signal: number }>(resolve => {
    pty.onExit(e => resolve({ exitCode: e.exitCode, signal: e.signal ?? 0 }));
  });
  pty.onData(opts.onOutput);
  return { pid: pty.pid, exited };
}
