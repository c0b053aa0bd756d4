import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { duplicateKey, duplicateKeyOf } from '../../../src/tasks/duplicate-keys.js';

/**
 * The reference: a character-by-character scan (the implementation before the bulk-submit work), kept here
 * as the oracle for the faster scan and for the counting shortcut.
 */
function referenceDuplicateKey(text: string): string | undefined {
  const stack: { keys: Set<string> | null; path: string; key?: string }[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return `${top.path}${top.path ? '.' : ''}${key}`;
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      const parent = stack[stack.length - 1];
      const at = parent?.keys ? (parent.key ?? '') : '';
      const path = parent ? `${parent.path}${parent.path && at ? '.' : ''}${at}` : '';
      stack.push({ keys: c === '{' ? new Set() : null, path });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack[stack.length - 1]?.keys != null;
    }
  }
  return undefined;
}

// Keys and strings drawn from a small alphabet rich in what a scanner can trip on: quotes, backslashes,
// colons, braces, and an escape of an ordinary letter ("a" and "\u0061" are the same key).
const piece = fc.constantFrom('a', 'b', 'c', '"', '\\', ':', '{', '}', ',', ' ', 'é', '\u0061');
const str = fc.array(piece, { maxLength: 4 }).map(p => p.join(''));
const { value } = fc.letrec(tie => ({
  value: fc.oneof(
    { depthSize: 'small' },
    str,
    fc.integer(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    tie('object'),
  ),
  // Objects as lists of pairs so that a key can be given twice, as a file could.
  object: fc.array(fc.tuple(str, tie('value')), { maxLength: 4 }),
}));

/** JSON text of a generated value: pair lists become objects (keys may repeat), with random spacing. */
function render(v: unknown, space: string, escapeA: boolean): string {
  const s = (x: string): string => {
    const json = JSON.stringify(x);
    return escapeA ? json.replace(/a/g, '\\u0061') : json;
  };
  if (typeof v === 'string') return s(v);
  if (Array.isArray(v) && v.every(e => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string')) {
    // An object (a list of [key, value] pairs); an empty list renders as {} or [], both fine.
    const body = (v as [string, unknown][]).map(
      ([k, x]) => `${space}${s(k)}${space}:${space}${render(x, space, escapeA)}`,
    );
    return `{${body.join(',')}${space}}`;
  }
  if (Array.isArray(v)) return `[${v.map(e => render(e, space, escapeA)).join(`,${space}`)}]`;
  return JSON.stringify(v);
}

describe('duplicateKey', () => {
  it('finds the same key, with the same path, as the reference scan', () => {
    fc.assert(
      fc.property(value, fc.constantFrom('', ' ', '\n\t'), fc.boolean(), (v, space, escapeA) => {
        const text = render(v, space, escapeA);
        const parsed: unknown = JSON.parse(text);
        const expected = referenceDuplicateKey(text);
        expect(duplicateKey(text)).toBe(expected);
        expect(duplicateKeyOf(text, parsed)).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it('names the key and its path; strings that look like keys do not count', () => {
    expect(duplicateKey('{"command":"a","command":"b"}')).toBe('command');
    expect(duplicateKey('{"pool":{"name":"p","cpu":1,"cpu":2}}')).toBe('pool.cpu');
    expect(duplicateKey('{"a":[{"b":1,"b":2}]}')).toBe('a.b');
    expect(duplicateKey('{"a":1,"\\u0061":2}')).toBe('a');
    expect(duplicateKey('{"command":"echo \\"command\\": x","x":"\\\\"}')).toBeUndefined();
    // A string holding `":` defeats the counting shortcut: the scan still finds no duplicate...
    const quoted = '{"command":"echo \\"a\\": b"}';
    expect(duplicateKeyOf(quoted, JSON.parse(quoted))).toBeUndefined();
    // ...and a duplicate hidden behind such a string is still found.
    const both = '{"command":"echo \\"a\\": b","command":"x"}';
    expect(duplicateKeyOf(both, JSON.parse(both))).toBe('command');
  });

  it('scans deep nesting without a stack overflow', () => {
    const deep = `${'['.repeat(20_000)}{"a":1,"a":2}${']'.repeat(20_000)}`;
    expect(duplicateKeyOf(deep, JSON.parse(deep))).toBe('a');
  });
});
