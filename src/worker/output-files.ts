import { constants, fstatSync, write, type Stats } from 'node:fs';
import { mkdir, open, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { InvalidInputError } from '../errors.js';
import { ensurePrivateDir } from '../private-dir.js';

/** Expands `$VAR` and `${VAR}` from `env`; unknown variables become empty, as in the shell. */
export function expandVars(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_m, a?: string, b?: string) => {
      return env[(a ?? b) as string] ?? '';
    },
  );
}

/**
 * Checks a task's `output_files` (comma separated) after it exited 0: each must exist and, unless
 * `allowEmpty`, be non-empty. Shared filesystems can be slow to show new files, so a missing file is
 * looked for again a few times with growing pauses (3 tries: 0 s, then `firstPauseMs`, then ×1.5).
 * Returns the problems, empty when all is well.
 */
export async function checkOutputFiles(
  list: string,
  opts: {
    env: Readonly<Record<string, string | undefined>>;
    cwd: string;
    allowEmpty: boolean;
    tries?: number;
    firstPauseMs?: number;
  },
): Promise<string[]> {
  const paths = list
    .split(',')
    .map(p => expandVars(p.trim(), opts.env))
    .filter(p => p !== '')
    .map(p => (p.startsWith('/') ? p : `${opts.cwd}/${p}`));
  let problems: string[] = [];
  let pause = opts.firstPauseMs ?? 1000;
  const tries = opts.tries ?? 3;
  for (let attempt = 1; attempt <= tries; attempt++) {
    problems = [];
    for (const p of paths) {
      try {
        const s = await stat(p);
        if (!s.isFile()) problems.push(`${p} is not a file`);
        else if (s.size === 0 && !opts.allowEmpty) problems.push(`${p} is empty`);
      } catch {
        problems.push(`${p} is missing`);
      }
    }
    if (problems.length === 0 || attempt === tries) break;
    await sleep(pause);
    pause *= 1.5;
  }
  return problems;
}

/** What `prepareOutput` found: whether the worker can follow the file, and a descriptor to hold (FIFO). */
export interface PreparedOutput {
  /** A regular file: the worker follows it for the live stream. */
  regular: boolean;
  /** Kept open for the task's life (a FIFO: its reader must not see EOF between the check and the task). */
  hold: FileHandle | undefined;
  /** The file, whatever its name (device and inode): stdout and stderr that are one file are opened once. */
  file: string;
}

const WHAT: Record<string, string> = {
  ENXIO: 'is a FIFO with no reader',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'is on a read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
  ENOTDIR: 'a part of the path is not a directory',
  ENOENT: 'no such file or directory',
  ENAMETOOLONG: 'is too long a path (PATH_MAX 4096 bytes, NAME_MAX 255 per name)',
  EINVAL: 'does not accept writes',
  EBADF: 'does not accept writes',
};

/**
 * Checks that a task's stdout or stderr can be written, before the task starts, without ever blocking the
 * worker: creates the directory, opens the path non-blocking (a FIFO without reader fails at once with
 * ENXIO instead of hanging), empties a regular file (each attempt's file holds exactly what that attempt
 * wrote) and probes with a zero-byte write, which devices that refuse data fail (/dev/full: ENOSPC,
 * /proc files: EIO) and files take harmlessly. Throws one line: "cannot write stdout: ENXIO: /p is a FIFO…".
 */
export async function prepareOutput(path: string, which: 'stdout' | 'stderr'): Promise<PreparedOutput> {
  let fh: FileHandle | undefined;
  try {
    fh = await openOutput(path);
    const st = await fh.stat();
    if (isWorkerOutput(st)) {
      throw Object.assign(new Error("is the worker's own stdout or stderr"), { code: 'EINVAL' });
    }
    // Emptied here, not by O_TRUNC at the open: only once it is known not to be the worker's own log. A new file
    // (most tasks) is empty already: no call.
    if (st.isFile() && st.size > 0) await fh.truncate(0);
    // fs.write (not FileHandle.write, which skips a zero-byte write without calling write(2)).
    await probeWrite(fh.fd);
    const file = `${st.dev}:${st.ino}`;
    if (st.isFIFO()) return { regular: false, hold: fh, file };
    await fh.close();
    return { regular: st.isFile(), hold: undefined, file };
  } catch (err) {
    await fh?.close().catch(() => {});
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    // ENXIO is also what a device without its hardware (or /dev/tty without a terminal) answers.
    const what =
      code === 'ENXIO' && !(await isFifo(path))
        ? 'no such device or address'
        : (err as Error).message.startsWith('is the worker')
          ? (err as Error).message
          : (WHAT[code] ?? (err as Error).message);
    throw new Error(`cannot write ${which}: ${code}: ${path} ${what}`);
  }
}

async function isFifo(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFIFO();
  } catch {
    return false;
  }
}

/** Directories known to exist: most tasks write to the same few, and each check costs a thread-pool hop. */
const madeDirs = new Set<string>();
/** O_NONBLOCK: a FIFO never waits. No O_TRUNC: prepareOutput empties a regular file once it has checked it. */
const OPEN_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_NONBLOCK | constants.O_APPEND;

/** The worker's own stdout and stderr (device, inode), read once. */
let workerOutputs: Stats[] | undefined;

/**
 * Whether an output is the file, pipe or socket the worker's own stdout or stderr goes to: `/dev/stdout`,
 * `/proc/self/fd/2` or a link to them resolve in the worker, to its log (`jtm worker > w.log`, Slurm's
 * `--output`). Emptying it would wipe the worker's log, and the task's bytes would be mixed into it. A
 * character device (a terminal, /dev/null) is left alone: nothing there to empty or to read back.
 */
function isWorkerOutput(st: Stats): boolean {
  if (!(st.isFile() || st.isFIFO() || st.isSocket())) return false;
  workerOutputs ??= [1, 2].flatMap(fd => {
    try {
      return [fstatSync(fd)];
    } catch {
      return [];
    }
  });
  return workerOutputs.some(w => w.dev === st.dev && w.ino === st.ino);
}

async function openOutput(path: string): Promise<FileHandle> {
  const dir = dirname(path);
  if (!madeDirs.has(dir)) {
    await makeDirectory(dir);
    madeDirs.add(dir);
  }
  try {
    return await open(path, OPEN_FLAGS);
  } catch (err) {
    // The directory may have been removed since it was made: make it again, once.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await makeDirectory(dir);
    return await open(path, OPEN_FLAGS);
  }
}

/**
 * `mkdir -p` that cannot spin: Node's recursive mkdir loops forever where mkdir(2) answers ENOENT for a parent
 * that exists (under /proc: seen as a task stuck `running`, a core busy, and a worker that would not stop).
 * Walks up to the first existing directory, then makes each missing one once; any refusal is the error.
 */
async function makeDirectory(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let cur = resolve(dir); ; cur = dirname(cur)) {
    try {
      if (!(await stat(cur)).isDirectory()) {
        throw Object.assign(new Error(`${cur} is not a directory`), { code: 'ENOTDIR' });
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(cur) === cur) throw err;
      missing.push(cur);
    }
  }
  for (const d of missing.reverse()) {
    try {
      await mkdir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Refuses a log directory the worker cannot write (a file, read-only, full): every task's default stdout and
 * stderr go there, so a worker that started anyway would fail every task it takes.
 */
export async function checkLogDir(dir: string): Promise<void> {
  const probe = join(dir, 'tasks', `.probe-${process.pid}`);
  try {
    // Where the worker writes each task's files: no other user's (ensurePrivateDir says why).
    for (const sub of ['tasks', 'resource']) ensurePrivateDir(join(dir, sub), LOG_DIR);
    await writeFile(probe, '');
    await unlink(probe);
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new InvalidInputError(
      `cannot use the log directory ${dir} (-ld / JTM_LOG_DIR): ${code}: ${WHAT[code] ?? (err as Error).message}`,
    );
  }
}

export const LOG_DIR = 'the log directory (-ld / JTM_LOG_DIR)';

/** write(2) of zero bytes: harmless to a file or pipe, refused by devices that take no data. */
function probeWrite(fd: number): Promise<void> {
  return new Promise((resolve, reject) =>
    write(fd, Buffer.alloc(0), 0, 0, null, err => (err ? reject(err) : resolve())),
  );
}
