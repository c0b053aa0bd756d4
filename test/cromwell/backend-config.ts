import { readFileSync } from 'node:fs';

/** The parts of a Cromwell config-backend `config { … }` block that the emulator honours. */
export interface BackendConfig {
  runtimeAttributes: Map<string, { type: string; optional: boolean; default?: string }>;
  submit: string;
  submitDocker?: string;
  kill: string;
  checkAlive: string;
  jobIdRegex: RegExp;
  exitCodeTimeoutSeconds?: number;
}

/**
 * Reads the stanza the way Cromwell's HOCON parser sees it for the keys we use: triple-quoted strings
 * verbatim, quoted strings with `\\` and `\"` unescaped, and the WDL draft-2 runtime declarations.
 */
export function loadBackendConfig(path: string): BackendConfig {
  const text = readFileSync(path, 'utf8');
  const values = new Map<string, string>();
  for (const m of text.matchAll(/^\s*([\w-]+)\s*=\s*"""([\s\S]*?)"""/gm)) values.set(m[1]!, m[2]!);
  for (const m of text.matchAll(/^\s*([\w-]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$/gm)) {
    if (!values.has(m[1]!)) values.set(m[1]!, m[2]!.replace(/\\(["\\])/g, '$1'));
  }
  const need = (key: string): string => {
    const v = values.get(key);
    if (v === undefined) throw new Error(`${path}: no ${key}`);
    return v;
  };
  const runtimeAttributes = new Map<string, { type: string; optional: boolean; default?: string }>();
  for (const line of need('runtime-attributes').split('\n')) {
    const m = /^\s*(String|Int|Float|Boolean)(\?)?\s+(\w+)(?:\s*=\s*(.+?))?\s*$/.exec(line);
    if (m) {
      runtimeAttributes.set(m[3]!, {
        type: m[1]!,
        optional: m[2] === '?',
        default: m[4]?.replace(/^"(.*)"$/, '$1'),
      });
    }
  }
  const timeout = /^\s*exit-code-timeout-seconds\s*=\s*(\d+)/m.exec(text)?.[1];
  return {
    runtimeAttributes,
    submit: need('submit'),
    submitDocker: values.get('submit-docker'),
    kill: need('kill'),
    checkAlive: need('check-alive'),
    jobIdRegex: new RegExp(need('job-id-regex')),
    exitCodeTimeoutSeconds: timeout === undefined ? undefined : Number(timeout),
  };
}

/**
 * Cromwell's template instantiation for the expressions config backends use: `${name}` and
 * `${"prefix " + name}` (empty when the optional attribute is not set). Unknown names are an error,
 * as in Cromwell.
 */
export function instantiate(template: string, vars: Readonly<Record<string, string | undefined>>): string {
  return template.replace(/\$\{([^}]*)\}/g, (_all, expr: string) => {
    const plain = /^\s*(\w+)\s*$/.exec(expr);
    const concat = /^\s*"([^"]*)"\s*\+\s*(\w+)\s*$/.exec(expr);
    const name = plain?.[1] ?? concat?.[2];
    if (name === undefined) throw new Error(`unsupported template expression \${${expr}}`);
    if (!(name in vars)) throw new Error(`template uses unknown variable ${name}`);
    const value = vars[name];
    if (value === undefined) return '';
    return concat ? `${concat[1]}${value}` : value;
  });
}
