import { InvalidInputError } from '../errors.js';
import { duplicateKeyOf } from './duplicate-keys.js';
import type { TaskInput } from './task-spec.js';

/** A task file's entries, and where each one is, for messages about it. */
export interface TaskFileEntries {
  inputs: TaskInput[];
  /**
   * Names the i-th entry in a message: `FILE:LINE` in JSON lines (the line in the file, blank lines counted),
   * `FILE: task N` in an array; undefined for a file of one object, whose messages need no place.
   */
  where: ((i: number) => string) | undefined;
}

/** A task file: one JSON object, a JSON array of objects, or JSON lines (one object per line). */
export function parseTaskFile(text: string, path: string): TaskInput[] {
  return taskFileEntries(text, path).inputs;
}

/** parseTaskFile, with the place of each entry (submit -f names it when an entry is refused). */
export function taskFileEntries(text: string, path: string): TaskFileEntries {
  if (text.includes('\0')) throw new InvalidInputError(`${path}: binary data, not JSON`);
  const trimmed = text.trim();
  if (trimmed === '') throw new InvalidInputError(`${path}: empty task file`);
  const noDuplicates = (json: string, parsed: unknown, where: string): void => {
    const key = duplicateKeyOf(json, parsed);
    if (key !== undefined) {
      throw new InvalidInputError(`${where}: key ${JSON.stringify(key)} given twice (which one is meant?)`);
    }
  };
  try {
    const parsed: unknown = JSON.parse(trimmed);
    noDuplicates(trimmed, parsed, path);
    if (Array.isArray(parsed)) {
      if (parsed.length === 0) throw new InvalidInputError(`${path}: empty task list`);
      return { inputs: parsed as TaskInput[], where: i => `${path}: task ${i + 1}` };
    }
    return { inputs: [parsed as TaskInput], where: undefined };
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    // Numbered as in the file (blank lines, leading ones too, count): an index among the non-blank lines
    // named another line than the one an editor shows.
    const lines = text
      .split('\n')
      .map((line, i) => ({ line, at: `${path}:${i + 1}` }))
      .filter(l => l.line.trim() !== '');
    if (lines.length < 2) throw new InvalidInputError(`${path}: malformed JSON (${(err as Error).message})`);
    const inputs = lines.map(({ line, at }) => {
      let parsed: TaskInput;
      try {
        parsed = JSON.parse(line) as TaskInput;
      } catch (e) {
        throw new InvalidInputError(`${at}: malformed JSON (${(e as Error).message})`);
      }
      noDuplicates(line, parsed, at);
      return parsed;
    });
    return { inputs, where: i => lines[i]?.at ?? path };
  }
}
