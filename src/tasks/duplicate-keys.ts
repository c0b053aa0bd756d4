// The characters the scan looks for, as the char codes it compares (see duplicateKey).
const QUOTE = '"'.charCodeAt(0);
const OPEN_OBJECT = '{'.charCodeAt(0);
const CLOSE_OBJECT = '}'.charCodeAt(0);
const OPEN_ARRAY = '['.charCodeAt(0);
const CLOSE_ARRAY = ']'.charCodeAt(0);
const COMMA = ','.charCodeAt(0);

/** Keys of one open object kept in an array while few (a task has about ten), then in a Set. */
const SET_FROM = 16;

/** One open object (its keys so far and the last one) or array (`keys` null). */
interface Frame {
  keys: string[] | Set<string> | null;
  key: string | undefined;
}

/** A key's end in JSON text: its closing quote, then the colon (whitespace between allowed). */
const KEY_END = /"[\t\n\r ]*:/g;

/**
 * duplicateKey(text) for a text already parsed into `value`, with a shortcut for the usual answer (none):
 * every key of the text ends in a match of KEY_END, and a match can also fall inside a string but never
 * covers two keys, so the text's matches are at least its keys; JSON.parse keeps one key of each duplicate
 * set, so when the parsed value holds as many keys as there are matches no key was given twice. Otherwise
 * (a duplicate, or a string holding `":`) the full scan decides.
 */
export function duplicateKeyOf(text: string, value: unknown): string | undefined {
  const matches = text.match(KEY_END)?.length ?? 0;
  return matches === countKeys(value) ? undefined : duplicateKey(text);
}

/** The number of object keys in a parsed JSON value, all levels (iterative: no stack depth limit). */
function countKeys(value: unknown): number {
  let count = 0;
  const todo: unknown[] = [value];
  while (todo.length > 0) {
    const v = todo.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const item of v) if (typeof item === 'object' && item !== null) todo.push(item);
    } else {
      for (const k of Object.keys(v)) {
        count++;
        const item = (v as Record<string, unknown>)[k];
        if (typeof item === 'object' && item !== null) todo.push(item);
      }
    }
  }
  return count;
}

/**
 * The first key that appears twice in one object of a JSON text, with its path, or undefined. JSON.parse
 * silently keeps the last of two equal keys, so `{"command": "a", "command": "b"}` would run b: a task
 * file that says two things is refused instead. `text` must be valid JSON (checked by JSON.parse first);
 * the scan is iterative, so deep nesting cannot overflow the stack. Keys are compared decoded
 * ("a" equals "\u0061").
 *
 * It runs once per line of a task file (10,000 lines for a bulk submit, in a cold process): char codes
 * rather than one-character strings, strings skipped with indexOf, and the path built only for the answer.
 */
export function duplicateKey(text: string): string | undefined {
  const stack: Frame[] = [];
  let expectKey = false;
  // Where the next backslash is (-1: none left): a string without one ends at the next quote.
  let backslash = text.indexOf('\\');
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let j = text.indexOf('"', i + 1);
      let escaped = false;
      while (backslash !== -1 && backslash < j) {
        if (backslash > i) {
          escaped = true;
          // An escape covers the next character: a quote there does not end the string.
          if (backslash + 1 === j) j = text.indexOf('"', j + 1);
          backslash = text.indexOf('\\', backslash + 2);
        } else backslash = text.indexOf('\\', i + 1);
      }
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        if (!addKey(top, key)) return pathOf(stack, key);
        top.key = key;
        expectKey = false;
      }
      i = j;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      stack.push({ keys: c === OPEN_OBJECT ? [] : null, key: undefined });
      expectKey = c === OPEN_OBJECT;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      stack.pop();
      expectKey = false;
    } else if (c === COMMA) {
      expectKey = stack[stack.length - 1]?.keys != null;
    }
  }
  return undefined;
}

/** Adds `key` to the frame's keys; false when it is there already. */
function addKey(frame: Frame, key: string): boolean {
  const keys = frame.keys;
  if (keys instanceof Set) {
    if (keys.has(key)) return false;
    keys.add(key);
  } else if (keys) {
    if (keys.includes(key)) return false;
    keys.push(key);
    if (keys.length > SET_FROM) frame.keys = new Set(keys);
  }
  return true;
}

/** `key`'s dotted path: the keys of the enclosing objects (an array adds no part). */
function pathOf(stack: readonly Frame[], key: string): string {
  let path = '';
  for (let f = 1; f < stack.length; f++) {
    const parent = stack[f - 1] as Frame;
    const at = parent.keys ? (parent.key ?? '') : '';
    path = `${path}${path && at ? '.' : ''}${at}`;
  }
  return `${path}${path ? '.' : ''}${key}`;
}
