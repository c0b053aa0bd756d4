import { InvalidInputError } from '../errors.js';
import { duplicateKeyOf } from './duplicate-keys.js';
import type { TaskInput } from './task-spec.js';

/** A task file: one JSON object, a JSON array of objects, or JSON lines (one object per line). */
export function parseTaskFile(text: string, path: string): TaskInput[] {
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
      return parsed as TaskInput[];
    }
    return [parsed as TaskInput];
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    const lines = trimmed.split('\n').filter(l => l.trim() !== '');
    if (lines.length < 2) throw new InvalidInputError(`${path}: malformed JSON (${(err as Error).message})`);
    return lines.map((line, i) => {
      let parsed: TaskInput;
      try {
        parsed = JSON.parse(line) as TaskInput;
      } catch (e) {
        throw new InvalidInputError(`${path}:${i + 1}: malformed JSON (${(e as Error).message})`);
      }
      noDuplicates(line, parsed, `${path}:${i + 1}`);
      return parsed;
    });
  }
}
