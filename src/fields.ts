import { InvalidInputError } from './errors.js';

/**
 * Field helpers shared by every reader of user input (task files, submit flags, the site file, the
 * configuration): one copy of each, so that a rule (an empty string means "not given") is the same everywhere.
 */

/** A copy of `o` without its undefined fields (what gets stored or spread over defaults). */
export function dropUndefined<T extends object>(o: T): T {
  // A plain loop: this runs a few times per task of a bulk submit, where entries/filter/fromEntries showed.
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) {
    const v = (o as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return out as T;
}

/** An optional string field: absent, null and '' are "not given"; a NUL byte could never reach a file or exec. */
export function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new InvalidInputError(`${field} must be a string`);
  if (value.includes('\0')) throw new InvalidInputError(`${field} contains a NUL byte`);
  refuseReplacedBytes(value, field);
  return value;
}

/**
 * Refuses text in which a byte that is not UTF-8 was replaced (U+FFFD): Node decodes argv, the working
 * directory and files as UTF-8, so a Latin-1 name (`café` as 0xE9) arrives as `caf\uFFFD`, and the task would
 * run another command, or name another file, than the one given (seen: success, a file of another name).
 */
export function refuseReplacedBytes(value: string, field: string): void {
  // A lone surrogate (a string of the programmatic API that is not well-formed UTF-16) is the same loss: it
  // becomes U+FFFD on its way to bash or a file name (a task ran `printf \uFFFD`: adversary 22 L2).
  if (/\p{Cs}/u.test(value)) {
    throw new InvalidInputError(
      `${field} has a lone surrogate (not well-formed UTF-16, it would become \uFFFD): it would name something else`,
    );
  }
  if (value.includes('\uFFFD')) {
    throw new InvalidInputError(
      `${field} has a byte that is not UTF-8 (shown as \uFFFD): it would name something else; rename it, or give it with a glob or $'\\xNN'`,
    );
  }
}

/**
 * A count in JSON (a task file's or the programmatic API's `cpu`, `node`, `nwpn`, `shared`) is a number, as the
 * site file's counts are: `"cpu": "4"` and `"shared": "0"` were taken for 4 and 0 (adversary 25 F8), so a
 * generator that quoted every value worked by chance, and one that wrote `"4 CPUs"` or `"0x4"` got an error
 * about the range. Returns the value for positiveInt; '' and null stay "not given", as for every field.
 * The flags are parsed by oclif (digits only) before they get here, as numbers.
 */
export function jsonCount(value: unknown, field: string): unknown {
  if (typeof value !== 'string' || value === '') return value;
  const digits = /^\d+$/.test(value.trim()) ? `: write ${value.trim()}, without quotes` : '';
  throw new InvalidInputError(`${field} must be a number, not the string ${JSON.stringify(value)}${digits}`);
}

/** An optional integer in [min, 1e6], as a number or a string of digits. */
export function positiveInt(value: unknown, field: string, min = 1): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > 1_000_000) {
    throw new InvalidInputError(
      `${field} must be an integer from ${min} to 1000000, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/**
 * The name of `names` nearest to `given` (case aside, at most two edits away), for a "did you mean" in the
 * message refusing an unknown key; undefined when none is that near.
 */
export function closestName(given: string, names: readonly string[]): string | undefined {
  const a = given.toUpperCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of names) {
    const d = editDistance(a, name.toUpperCase());
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

/** Levenshtein distance (insertions, deletions, substitutions), one row at a time. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = row;
  }
  return prev[b.length] as number;
}
