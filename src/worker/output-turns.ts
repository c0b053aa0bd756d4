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
   * Waits for the earlier runs that name any of `paths` (telling `onWait` which path, once, if it must), then
   * holds them; the returned function ends the turn.
   */
  async take(paths: readonly string[], onWait: (path: string) => void): Promise<() => void> {
    const own = [...new Set(paths.filter(p => !p.startsWith('/dev/')))];
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
    await Promise.all(before);
    return () => {
      end();
      for (const p of own) if (this.turns.get(p) === mine) this.turns.delete(p);
    };
  }
}
