import type { ManifestCommand, ManifestFlag } from './manifest.js';

export type FlagValue = string | number | boolean;

export interface PlainInvocation {
  flags: Record<string, FlagValue>;
  args: Record<string, string>;
}

/**
 * Parses a command's argv (after normaliseArgv) from its manifest entry, accepting only what is plain
 * and valid: known flags with good values, each option once, positional args within the count, no
 * --json, no `--`. For anything else it returns undefined and bin/run.js hands the argv to oclif, which
 * then prints its usual help or error. Within what it accepts the result equals oclif's parse
 * (@oclif/core parser/parse.js): `--name=v`, `--name v`, `-c v`, `-cv`, `-c=v`, booleans without value.
 */
export function parsePlainArgv(cmd: ManifestCommand, argv: readonly string[]): PlainInvocation | undefined {
  if (cmd.strict === false || !supported(cmd)) return undefined;
  const flags: Record<string, FlagValue> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (!token.startsWith('-') || token === '-') {
      positional.push(token);
      continue;
    }
    const found = findFlag(cmd, token);
    if (!found || found.flag.name === 'json') return undefined;
    const { flag, inline } = found;
    // Repeatable flags collect arrays, and `--no-x` of an allowNo flag is not found above: oclif's, once
    // used. Left unused they change nothing (no value, no default), so the command stays on the fast path.
    if (flag.multiple) return undefined;
    if (flag.type === 'boolean') {
      // `--debug=true` and bundled short booleans (`-ab`) are parsed by oclif in surprising ways.
      if (inline !== undefined) return undefined;
      flags[flag.name] = true;
      continue;
    }
    if (flag.name in flags) return undefined; // oclif: "can only be specified once"
    const value = inline ?? argv[++i];
    // A value that looks like a flag is an error for oclif (or help, for --help): leave it to oclif.
    if (value === undefined || value.startsWith('-')) return undefined;
    const parsed = parseValue(flag, value);
    if (parsed === undefined) return undefined;
    flags[flag.name] = parsed;
  }
  const argNames = Object.keys(cmd.args);
  if (positional.length > argNames.length) return undefined; // oclif: "Unexpected argument"
  const args: Record<string, string> = {};
  positional.forEach((value, n) => (args[argNames[n] as string] = value));
  for (const flag of Object.values(cmd.flags)) {
    if (!(flag.name in flags) && isScalar(flag.default)) flags[flag.name] = flag.default;
  }
  return { flags, args };
}

/**
 * Whether every flag and arg of the command uses only features this parser reproduces exactly, whether or
 * not the argv names it (repeatable flags are refused where they are used, see above).
 */
function supported(cmd: ManifestCommand): boolean {
  const flagsOk = Object.values(cmd.flags).every(
    f =>
      !f.env &&
      !f.allowStdin &&
      !f.required &&
      !f.dependsOn?.length &&
      !f.exclusive?.length &&
      !f.exactlyOne?.length &&
      !f.relationships?.length &&
      !f.hasDynamicHelp &&
      (f.default === undefined || isScalar(f.default)) &&
      (f.type === 'boolean' || (f.jtm !== undefined && f.jtm.value !== 'custom')),
  );
  const argsOk = Object.values(cmd.args).every(
    a => !a.required && !a.multiple && !a.options && a.default === undefined,
  );
  return flagsOk && argsOk;
}

function isScalar(v: unknown): v is FlagValue {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/** The flag a token names, with its inline value (`--name=v`, `-cv`, `-c=v`). */
function findFlag(
  cmd: ManifestCommand,
  token: string,
): { flag: ManifestFlag; inline: string | undefined } | undefined {
  const flags = Object.values(cmd.flags);
  // As oclif, one table for aliases and char aliases, looked up by long names and by chars alike.
  const aliased = (name: string): ManifestFlag | undefined =>
    flags.find(f => f.aliases?.includes(name) || f.charAliases?.includes(name));
  if (token.startsWith('--')) {
    const eq = token.indexOf('=');
    const name = token.slice(2, eq === -1 ? undefined : eq);
    const flag = flags.find(f => f.name === name) ?? aliased(name);
    return flag && { flag, inline: eq === -1 ? undefined : token.slice(eq + 1) };
  }
  const char = token[1] as string;
  const flag = aliased(char) ?? flags.find(f => f.char === char);
  if (!flag) return undefined;
  if (token.length === 2) return { flag, inline: undefined };
  return { flag, inline: token.slice(token[2] === '=' ? 3 : 2) };
}

/** The value as oclif's string/option/integer flags parse it; undefined when oclif would reject it. */
function parseValue(flag: ManifestFlag, value: string): FlagValue | undefined {
  if (flag.options && !flag.options.includes(value)) return undefined;
  if (flag.jtm?.value !== 'integer') return value;
  if (!/^-?\d+$/.test(value)) return undefined;
  const n = Number.parseInt(value, 10);
  const { min, max } = flag.jtm;
  if ((min !== undefined && n < min) || (max !== undefined && n > max)) return undefined;
  return n;
}
