import { submitTasksRetrying } from '../../tasks/submit-task.js';
import { OutputWriteError, SubmitInterruptedError, SubmitUnsettledError } from '../../errors.js';
import { installTakeBack, signalExitCode } from '../../shutdown.js';
import { CommitGate } from '../../tasks/commit-gate.js';
import { killTask } from '../../tasks/kill-task.js';
import { printDurably, type CommandSession } from '../session.js';
import { tasksFromFlags, type SubmitFlags } from '../submit-cli.js';

/**
 * `jtm submit`: one `JTM task ID <n>` line per task, once all of them are durably queued. Retried while Redis
 * is unreachable for up to JTM_SUBMIT_RETRY (submitTasksRetrying).
 */
export async function runSubmit(
  s: CommandSession,
  { flags }: { flags: SubmitFlags },
): Promise<{ task_ids: number[] }> {
  const tasks = tasksFromFlags(flags, s.config, process.cwd());
  const gate = new CommitGate();
  // From here until the process ends (the ids printed, the connection closed): a signal takes the submit back
  // before its commit is sent, and is ignored after (adversary 34 H1). Never uninstalled: a signal while the
  // connection closes, the ids printed, ended it 130 with its tasks committed.
  let said = false;
  installTakeBack({
    takeBack: signal => gate.close(new SubmitInterruptedError(signal, signalExitCode(signal), tasks.length)),
    finishing: signal =>
      void process.stderr.write(
        `jtm submit: ${signal} after the commit was sent: finishing, its ids follow (its tasks run)\n`,
      ),
    end: signal => {
      // Its records left queued are never started (no commit) and the manager fails them.
      if (!said) process.stderr.write(`jtm submit: ${gate.closedBy?.message ?? signal}\n`);
      process.exit(signalExitCode(signal));
    },
  });
  // Not on stderr: a submit that fails in the end says so in one line, as every failing command does.
  const ids = await submitTasksRetrying(
    s,
    tasks,
    s.config.submitRetryMs,
    (err, tries) => s.logger.debug({ err, tries }, 'Redis unreachable: submit retried'),
    gate,
  ).catch((err: unknown) => {
    // Said by the caller's one line (BaseCommand, the fast path), not again by `end`.
    if (err === gate.closedBy) said = true;
    if (!(err instanceof SubmitUnsettledError)) throw err;
    // Its tasks are in Redis and each will end one way or the other: Cromwell gets the ids (exit 0) and follows
    // them with isalive and the rc file. Exit 255 without them left tasks that ran unseen (adversary 26 F1).
    process.stderr.write(`jtm submit: ${err.message}\n`);
    return [...err.ids];
  });
  // One write for all ids: a 10,000-task file printed line by line cost ~100 ms.
  if (ids.length > 0 && !s.json) await deliverIds(s, ids);
  return { task_ids: ids };
}

/**
 * Prints the ids, or, when they cannot be written (Cromwell's `stdout.submit` on a full scratch disk), kills the
 * tasks and fails: a submit that exited 1 with its tasks queued left them running unknown to Cromwell, which
 * never checks or aborts a job it has no id for, and runs the call again on a restart (adversary 9 J7).
 */
async function deliverIds(s: CommandSession, ids: readonly number[]): Promise<void> {
  // This says what went wrong itself (with what it undid): bin/run.js's generic line would be a second one.
  const guards = process.stdout.listeners('error') as ((err: Error) => void)[];
  process.stdout.removeAllListeners('error');
  process.stdout.on('error', () => {});
  try {
    await printDurably(`${ids.map(id => `JTM task ID ${id}`).join('\n')}\n`);
    process.stdout.removeAllListeners('error');
    for (const g of guards) process.stdout.on('error', g);
  } catch (err) {
    const ctx = await s.context();
    const killed = await Promise.allSettled(ids.map(id => killTask(ctx, id, 0)));
    const left = ids.filter((_, i) => killed[i]?.status === 'rejected');
    const e = err as NodeJS.ErrnoException;
    throw new OutputWriteError(
      e,
      left.length === 0
        ? `the ${ids.length} task(s) it queued were killed`
        : `${ids.length - left.length} of its tasks were killed, not ${left.join(', ')} (kill them: jtm kill -tid N)`,
    );
  }
}
