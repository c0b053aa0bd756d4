import { Flags } from '@oclif/core';

import { InvalidInputError } from '../errors.js';

/** A flag definition as oclif keeps it (only what is read here). */
interface FlagDef {
  type: 'boolean' | 'option';
  aliases?: string[];
  allowNo?: boolean;
  options?: readonly string[];
  parse?: unknown;
}

const STRING_PARSE = String(Flags.string().parse);
// NUL cannot occur in argv, so a placeholder can never be a value somebody typed.
const PLACEHOLDER = '\u0000jtm-value-';

/**
 * `--command=-p x` (what normaliseArgv makes of `-cmd '-p x'`) is one token whose value starts with '-':
 * oclif takes such a value for a flag ("Flag --command expects a value") even after '='. The value of a
 * string flag written with '=' cannot be a flag, so it is swapped for a placeholder that oclif accepts and
 * put back after parsing. Integer and option flags keep oclif's own check and message.
 */
export function shieldDashValues(
  argv: readonly string[],
  flags: Readonly<Record<string, FlagDef>>,
): { argv: string[]; restore: (parsed: Record<string, unknown>) => void } {
  const values: string[] = [];
  const out = argv.map(token => {
    if (token === '--') return token;
    const m = /^--([^=]+)=(-.*)$/s.exec(token);
    if (!m) return token;
    const [, name = '', value = ''] = m;
    const def = flags[name] ?? Object.values(flags).find(f => f.aliases?.includes(name));
    if (!def || def.type !== 'option' || def.options || String(def.parse) !== STRING_PARSE) return token;
    values.push(value);
    return `--${name}=${PLACEHOLDER}${values.length - 1}`;
  });
  const put = (v: unknown): unknown =>
    typeof v === 'string' && v.startsWith(PLACEHOLDER) ? values[Number(v.slice(PLACEHOLDER.length))] : v;
  // A flag given more than once (`multiple`, e.g. --sbatch-arg) is an array: its values are put back too (they
  // reached the user's error message as the placeholder).
  const restore = (parsed: Record<string, unknown>): void => {
    for (const [k, v] of Object.entries(parsed)) parsed[k] = Array.isArray(v) ? v.map(put) : put(v);
  };
  return { argv: out, restore };
}

/**
 * oclif drops the value of a boolean written as `--zerofile=yes` (the value becomes an "unexpected
 * argument", or a task id for commands that take one): a boolean with a value is refused with its name.
 */
export function refuseBooleanValues(argv: readonly string[], flags: Readonly<Record<string, FlagDef>>): void {
  for (const token of argv) {
    if (token === '--') return;
    const m = /^--([^=]+)=(.*)$/s.exec(token);
    if (!m) continue;
    const [, raw = '', value = ''] = m;
    const name = raw.replace(/^no-/, '');
    const def =
      flags[raw] ??
      Object.values(flags).find(f => f.aliases?.includes(raw)) ??
      (raw.startsWith('no-') ? flags[name] : undefined);
    if (def?.type === 'boolean') {
      throw new InvalidInputError(
        `--${raw} takes no value (got ${JSON.stringify(value)}): write --${raw} alone`,
      );
    }
  }
}
