import type { Config } from '../config.js';
import type { ContextSource, JtmContext } from '../context.js';
import type { Logger } from '../logger.js';

/**
 * What a command body (src/cli/actions/) needs from whoever runs it: an oclif BaseCommand, or the fast
 * path of bin/run.js. Both run the same bodies, so the two cannot drift apart.
 */
export interface CommandSession extends ContextSource {
  readonly config: Config;
  readonly logger: Logger;
  /** With --json the result is returned (and printed by oclif), never written as text. */
  readonly json: boolean;
  /** Writes complete lines to stdout; nothing with --json. */
  print(text: string): void;
  /** The Redis-backed context, opened on first use. */
  context(): Promise<JtmContext>;
  /** Drops a failed connection so that the next context() connects again. */
  resetContext(): Promise<void>;
}

/**
 * Writes text to stdout and resolves once it is written, or rejects with why it could not be (a full disk,
 * `/dev/full`, a closed pipe): for output that must be delivered or undone (submit's task ids).
 */
export function printDurably(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, err => (err ? reject(err) : resolve()));
  });
}

/** `-tid N` or a positional id, as parsed. */
export interface TaskIdInput {
  flags: { task_id?: string };
  args: { id?: string };
}
