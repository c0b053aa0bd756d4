/**
 * Runs of one worker that name the same stdout or stderr file take turns: each run empties its files as it
 * starts, so a second task writing to the same path erased the first one's output, and both were recorded with
 * the mixed file as their output (adversary 5 G6: "B1 A6 B2 A7 B3 A8" for both, A1..A5 gone). The later run
 * waits, holding its slot, until the earlier one has ended; its time limit starts when it starts. Device files
 * (`/dev/null`) are shared freely. Runs on other workers are not seen (docs/reliability.md).
 */
export class OutputTurns {
  /** The newest run's turn per path: resolved when that run has ended. */
  private readonly turns = new Map<string, Promise<void>>();

  /**
   * Waits for the earlier runs that name any of `paths` (telling `onWait` which path, once, if it must), or
   * until `stopped` (a kill, a stop: the run then starts nothing), then holds them; the returned function
   * ends the turn, never before the earlier runs' (a run that stopped waiting must not let a later one
   * overtake them).
   */
  async take(
    paths: readonly string[],
    onWait: (path: string) => void,
    stopped: Promise<void>,
  ): Promise<() => void> {
    // Device files (/dev/null, a tty) are shared freely; /dev/shm holds regular files.
    const own = [...new Set(paths.filter(p => !p.startsWith('/dev/') || p.startsWith('/dev/shm/')))];
    let end!: () => void;
    const mine = new Promise<void>(r => (end = r));
    const before: Promise<void>[] = [];
    for (const p of own) {
      const prev = this.turns.get(p);
      if (prev) {
        if (before.length === 0) onWait(p);
        before.push(prev);
      }
      this.turns.set(p, mine);
    }
    const earlier = Promise.all(before);
    await Promise.race([earlier, stopped]);
    return () => {
      void earlier.then(() => {
        end();
        for (const p of own) if (this.turns.get(p) === mine) this.turns.delete(p);
      });
    };
  }
}
