import { stripVTControlCharacters } from 'node:util';

import { asJtmError, JtmError } from '../errors.js';
import { asTyped } from './argv.js';

/** How a failed command ends: one line on stderr, an exit code and, with --json, an error object. */
export interface ErrorReport {
  exitCode: number;
  /** The whole stderr output: `jtm <command>: <the message on one line>\n`. */
  line: string;
  json: { error: { code: string; message: string; exit_code: number } };
  /** Set for errors JTM did not raise on purpose (worth a debug log with the stack). */
  unexpected: Error | undefined;
}

/** What may be thrown: JTM's errors, oclif's (with `oclif.exit`), or anything else. */
export type Thrown = Error & { exitCode?: number; oclif?: { exit?: number } };

/**
 * oclif's parse errors span several lines whose first is only a heading ("Parsing --ncpu", "The following
 * error occurred:"); the reason is below it, and the last line is an advert for --help. Headings that end in
 * ':' and the advert are dropped and the rest joined, so that the one line says what is wrong.
 */
export function oneLine(message: string): string {
  const lines = stripVTControlCharacters(message)
    .split('\n')
    .map(l =>
      l
        .trim()
        .replace(/^Error: /, '')
        .replace(/^Parsing (--\S+)$/, '$1'),
    )
    .filter(l => l !== '' && !/^See more help with --help$/.test(l));
  const kept = lines.filter((l, i) => !(l.endsWith(':') && i < lines.length - 1 && /^The following/.test(l)));
  // Joined by ': ', or by a space after a line that ends in ':' already. Only the joints are touched: a
  // message's own colons stay (`::`, an IPv6 address, lost its first ':' to a global replace).
  return kept.reduce((acc, l) => (acc === '' ? l : acc.endsWith(':') ? `${acc} ${l}` : `${acc}: ${l}`), '');
}

/** The longest error line JTM prints (characters of the message), its middle cut out past it. */
export const MAX_ERROR_CHARS = 2000;

/**
 * A message cut to MAX_ERROR_CHARS: its start and end kept (what was wrong, and the advice that ends most lines),
 * the middle said as a count. Messages quote the value they refuse, and a 5 MB field of a task file made a
 * 5,000,039-byte stderr line (adversary 34 L1).
 */
export function capped(message: string): string {
  if (message.length <= MAX_ERROR_CHARS) return message;
  // Never between the two halves of a surrogate pair (an emoji in the value): that would print U+FFFD.
  const low = (i: number): boolean => /[\uDC00-\uDFFF]/.test(message.charAt(i));
  let head = MAX_ERROR_CHARS / 2;
  let tail = message.length - MAX_ERROR_CHARS / 2;
  if (low(head)) head--;
  if (low(tail)) tail++;
  return `${message.slice(0, head)}… (${tail - head} characters cut) …${message.slice(tail)}`;
}

/**
 * The one formatting of a command's failure, shared by BaseCommand.catch (oclif) and the fast path
 * (bin/run.js), so that both give Cromwell the same exit code and the same single stderr line.
 */
export function reportError(
  thrown: unknown,
  commandId: string | undefined,
  /** Where Redis is (redisLocation), for a failure to reach it that no command turned into its own error. */
  redisWhere = 'REDIS_URL',
): ErrorReport {
  const err = thrown as Thrown;
  const e = asJtmError(thrown, redisWhere);
  const exitCode = e instanceof JtmError ? e.exitCode : (err?.oclif?.exit ?? err?.exitCode) === 0 ? 0 : 1;
  const message = capped(asTyped(oneLine(e.message)) || e.name);
  return {
    exitCode,
    line: `jtm ${commandId ?? ''}: ${message}\n`,
    json: { error: { code: e instanceof JtmError ? e.code : 'ERROR', message, exit_code: exitCode } },
    unexpected: e instanceof JtmError ? undefined : e,
  };
}
