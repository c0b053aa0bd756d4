import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { resolve } from 'node:path';

/**
 * Runs of one worker that write to the same stdout or stderr file take turns: each run empties its files as it
 * starts, so a second task writing to the same file erased the first one's output, and both were recorded with
 * the mixed file as their output (adversary 5 G6: "B1 A6 B2 A7 B3 A8" for both, A1..A5 gone). The later run
 * waits, holding its slot, until the earlier one has ended; its time limit starts when it starts. Devices
 * (`/dev/null`, a terminal) are shared freely. Runs on other workers are not seen (docs/reliability.md).
 *
 * "The same file" is the file, not its name: `//`, `/./`, a symlinked directory or a hard link reach one file
 * under other names (adversary 10 K3: a site's `$SCRATCH` and `/pscratch/...`). A path a task named is known
 * by its device and inode; a new file is made (empty, as the run would make it) so that it has them before
 * any other name can reach it. A path the worker chose (`<log dir>/tasks/<id>.out`) is its own by its name,
 * which holds the task id: no file system call for it (the stat, the open and the close are thread-pool hops
 * per task that most tasks, which name no file, would pay).
 */
export class OutputTurns {
  /** The newest run's turn per file: resolved when that run has ended. */
  private readonly turns = new Map<string, Promise<void>>();
  /**
   * The lookups of named paths, one after the other: each run takes its turn in the order it asked, as when the
   * keys were names. Looked up side by side, a later run whose stat answered first went before an earlier one
   * (a fresh-clone run under load: the third task on a file ran before the second, while the first still ran).
   */
  private lookups: Promise<unknown> = Promise.resolve();

  /**
   * Waits for the earlier runs that write to any of the files (telling `onWait` which path, once, if it
   * must), or until `stopped` (a kill, a stop: the run then starts nothing), then holds them; the returned
   * function ends the turn, never before the earlier runs' (a run that stopped waiting must not let a later
   * one overtake them). `named`: whether the task named the path (else the worker chose it: see above).
   */
  async take(
    outputs: readonly { path: string; named: boolean }[],
    onWait: (path: string) => void,
    stopped: Promise<void>,
  ): Promise<() => void> {
    // A stop while a path is looked at (an NFS server that does not answer) ends the wait: the run starts nothing.
    let isStopped = false;
    void stopped.then(() => (isStopped = true));
    const lookUp = (): Promise<{ path: string; key: string | undefined }[]> =>
      Promise.all(
        outputs.map(async o => ({
          path: o.path,
          key: o.named ? await fileKey(o.path, () => isStopped) : `name:${o.path}`,
        })),
      );
    const named = outputs.some(o => o.named);
    const lookup = named ? this.lookups.then(lookUp) : lookUp();
    if (named) this.lookups = lookup.catch(() => undefined);
    const keyed = await Promise.race([lookup, stopped.then(() => undefined)]);
    if (keyed === undefined) return () => {};
    let end!: () => void;
    const mine = new Promise<void>(r => (end = r));
    const own: string[] = [];
    const before: Promise<void>[] = [];
    for (const { path, key } of keyed) {
      if (key === undefined || own.includes(key)) continue;
      own.push(key);
      const prev = this.turns.get(key);
      if (prev) {
        if (before.length === 0) onWait(path);
        before.push(prev);
      }
      this.turns.set(key, mine);
    }
    const earlier = Promise.all(before);
    await Promise.race([earlier, stopped]);
    return () => {
      void earlier.then(() => {
        end();
        for (const k of own) if (this.turns.get(k) === mine) this.turns.delete(k);
      });
    };
  }
}

/**
 * What a path a task named writes to: `file:<dev>:<ino>` of a file or FIFO (made first if it does not exist
 * and its directory does), undefined for a device (shared freely) or what no run can write (a directory: the
 * run fails on it), `name:<absolute path>` where the file cannot be made (its directory is made by the run).
 */
async function fileKey(path: string, stopped: () => boolean): Promise<string | undefined> {
  let st = await stat(path).catch(() => undefined);
  // A run stopped meanwhile touches none of its files (task-run.ts run()): no file is made for it.
  if (st === undefined && !stopped()) {
    // O_EXCL: a file made meanwhile by another is left as it is; O_NONBLOCK as the run's own open.
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NONBLOCK;
    await open(path, flags, 0o666).then(
      fh => fh.close(),
      () => undefined,
    );
    st = await stat(path).catch(() => undefined);
  }
  if (st === undefined) return `name:${resolve(path)}`;
  return st.isFile() || st.isFIFO() ? `file:${st.dev}:${st.ino}` : undefined;
}
