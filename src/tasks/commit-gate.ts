/**
 * A submit's point of no return, shared with whoever may take the submit back before it (a signal to
 * `jtm submit`, shutdown.ts's installTakeBack). Before its commit is sent a submit can be taken back whole
 * (nothing of it runs); once sent, its tasks may run, and only finishing it (printing every id) keeps the
 * promise that a task no one has the id of never runs (adversary 34 H1: a SIGINT then exited 130 while its
 * tasks ran, its ids printed or not).
 */
export class CommitGate {
  private state: 'open' | 'sent' | 'closed' = 'open';
  /** What the submit fails with once taken back (the caller's error: SubmitInterruptedError for a signal). */
  private why: Error | undefined;

  /** Takes the submit back unless its commit was sent: true when no commit will be sent now. */
  close(why: Error): boolean {
    if (this.state === 'sent') return false;
    this.state = 'closed';
    this.why ??= why;
    return true;
  }

  /** Called right before the commit is sent: false when the submit was taken back (send nothing then). */
  pass(): boolean {
    if (this.state === 'closed') return false;
    this.state = 'sent';
    return true;
  }

  /** The error the submit fails with once taken back; undefined while it may still be committed. */
  get closedBy(): Error | undefined {
    return this.state === 'closed' ? this.why : undefined;
  }
}
