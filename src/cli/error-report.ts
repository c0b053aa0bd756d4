import { JtmError, toError } from '../errors.js';

/** How a failed command ends: one line on stderr, an exit code and, with --json, an error object. */
export interface ErrorReport {
  exitCode: number;
  /** The whole stderr output: `jtm <command>: <first line of the message>\n`. */
  line: string;
  json: { error: { code: string; message: string; exit_code: number } };
  /** Set for errors JTM did not raise on purpose (worth a debug log with the stack). */
  unexpected: Error | undefined;
}

/** What may be thrown: JTM's errors, oclif's (with `oclif.exit`), or anything else. */
export type Thrown = Error & { exitCode?: number; oclif?: { exit?: number } };

/**
 * The one formatting of a command's failure, shared by BaseCommand.catch (oclif) and the fast path
 * (bin/run.js), so that both give Cromwell the same exit code and the same single stderr line.
 */
export function reportError(thrown: unknown, commandId: string | undefined): ErrorReport {
  const err = thrown as Thrown;
  const e = toError(thrown);
  const exitCode = e instanceof JtmError ? e.exitCode : (err?.oclif?.exit ?? err?.exitCode) === 0 ? 0 : 1;
  const message = e.message.split('\n').find(l => l.trim() !== '') ?? e.name;
  return {
    exitCode,
    line: `jtm ${commandId ?? ''}: ${message.replace(/^Error: /, '')}\n`,
    json: { error: { code: e instanceof JtmError ? e.code : 'ERROR', message, exit_code: exitCode } },
    unexpected: e instanceof JtmError ? undefined : e,
  };
}
