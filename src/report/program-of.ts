/**
 * The program a command runs, for the report's groups (analyse.ts groupOf): read as the shell reads the first
 * simple command — quotes and backslashes undone, assignments and wrapper words with their options skipped —
 * so that `timeout -s KILL 10 bwa mem`, `/usr/bin/time -f %e -o t bwa mem` and `bash '/a b/align.sh'` are
 * grouped as `bwa`, `bwa` and `bash align.sh` (adversary 14 F1: they were `KILL`, `%e` — holding every program
 * run under that format — and `bash path`).
 */

const SHELLS = new Set(['bash', 'sh', 'zsh', 'dash', 'ksh']);

/**
 * Words that run the next one (`exec samtools …`, `env A=1 tool`), with their options that take a value as a
 * separate word; `timeout` also takes its duration before the command. Options not listed are taken as flags.
 */
const WRAPPERS: Readonly<Record<string, { valued: readonly string[]; positional?: number }>> = {
  exec: { valued: ['-a'] },
  time: { valued: ['-f', '-o', '--format', '--output'] },
  nohup: { valued: [] },
  env: { valued: ['-u', '--unset', '-C', '--chdir', '-S', '--split-string'] },
  command: { valued: [] },
  nice: { valued: ['-n', '--adjustment'] },
  stdbuf: { valued: ['-i', '-o', '-e', '--input', '--output', '--error'] },
  timeout: { valued: ['-s', '-k', '--signal', '--kill-after'], positional: 1 },
  ionice: { valued: ['-c', '-n', '-p', '--class', '--classdata'] },
  taskset: { valued: [], positional: 1 },
  chrt: { valued: [], positional: 1 },
  srun: {
    valued: [
      ...['-n', '-c', '-N', '-p', '-t', '-J', '-o', '-e', '-A', '-w', '-C', '-G', '-q', '-D', '-m', '-d'],
      ...['--ntasks', '--cpus-per-task', '--nodes', '--partition', '--time', '--job-name', '--output'],
      ...['--error', '--account', '--nodelist', '--constraint', '--gres', '--gpus', '--mem', '--mem-per-cpu'],
      ...['--qos', '--chdir', '--distribution', '--dependency', '--export', '--cpu-bind', '--mpi'],
    ],
  },
};

/** Shell options that take the next word (`bash -o pipefail script`, `bash -euo pipefail script`). */
const SHELL_VALUED = /^([-+][A-Za-z]*[oO]|--rcfile|--init-file)$/;

/** Builtins that only set the shell up before the real command (`set -euo pipefail; bwa …`): looked past. */
const SETUP = new Set([
  'set',
  'cd',
  'export',
  'source',
  '.',
  'ulimit',
  'umask',
  'shopt',
  'trap',
  'module',
  'true',
  ':',
]);

/**
 * A redirection word as written (`>out`, `2>&1`, `<in`): not the program; without its target in it, the next word
 * is. `s`: a target may hold a line separator (U+2028), which `.` alone does not match.
 */
const REDIRECTION = /^\d*(>>?|<<?|&>>?|>&|<&)(.*)$/s;

/** Shell keywords that open a compound command: the group says so rather than naming a `for` program. */
const COMPOUND = new Set(['for', 'while', 'until', 'if', 'case', 'select', '{', '(', '((', '[[', 'function']);

/**
 * The words of a command's first simple command, as the shell would pass them: quotes removed, backslash escapes
 * undone, up to the first unquoted `;`, `|`, `&`, newline or parenthesis. No expansion (`$X` stays as written).
 * A leading `(` or `((` is a word of its own (a compound command).
 */
export function firstCommandWords(command: string): string[] {
  return splitFirstCommand(command).words;
}

/**
 * The first simple command's words, each also as written (a redirection — `>out`, `2>`, `<in` — has its operator
 * unquoted there:
 * `'<b>x</b>'` and `"</script>"` are words, as bash runs them, adversary 21 F3: they were skipped as
 * redirections and the task filed under its argument or the next command), and the text after the separator
 * that ended it ('' when none did).
 */
function splitFirstCommand(command: string): { words: string[]; sources: string[]; rest: string } {
  const words: string[] = [];
  /** Each word as written, quotes kept: a redirection's operator is unquoted in it. */
  const sources: string[] = [];
  let word = '';
  let inWord = false;
  /** Where the current word starts in `command`: its source text, quotes kept, tells a redirection. */
  let start = 0;
  const end = (at: number): void => {
    if (inWord) {
      words.push(word);
      sources.push(command.slice(start, at));
    }
    word = '';
    inWord = false;
  };
  /** `c` (an unquoted `<`, `>` or `&>`) starts a redirection: it ends a word other than a descriptor's digits. */
  const operatorAt = (i: number): void => {
    if (inWord && !/^[\d<>&]*$/.test(command.slice(start, i))) end(i);
  };
  for (let i = 0; i < command.length; i++) {
    const c = command[i] as string;
    if (!inWord && c !== ' ' && c !== '\t') start = i;
    if (c === "'") {
      const close = command.indexOf("'", i + 1);
      const stop = close < 0 ? command.length : close;
      word += command.slice(i + 1, stop);
      inWord = true;
      i = stop;
    } else if (c === '"') {
      inWord = true;
      for (i++; i < command.length && command[i] !== '"'; i++) {
        const d = command[i] as string;
        const n = command[i + 1];
        if (d === '\\' && n !== undefined && '"\\$`\n'.includes(n)) {
          if (n !== '\n') word += n;
          i++;
        } else word += d;
      }
    } else if (c === '\\') {
      const n = command[i + 1];
      if (n !== undefined && n !== '\n') {
        word += n;
        inWord = true;
      }
      i++;
    } else if (c === ' ' || c === '\t') {
      end(i);
    } else if (
      ';|&\n'.includes(c) &&
      !((c === '&' && /[<>]/.test(command[i - 1] ?? '')) || (c === '&' && command[i + 1] === '>'))
    ) {
      // `&&`, `||`, `;;`: the separator's second character is not the next command's. After a pipe, the
      // command is the first one's (`bwa … | samtools …` is bwa).
      const next = command[i + 1] === c ? i + 2 : i + 1;
      end(i);
      return { words, sources, rest: c === '|' && command[i + 1] !== '|' ? '' : command.slice(next) };
    } else if (c === '(' || c === ')') {
      if (!inWord && words.length === 0 && c === '(')
        // a subshell or an arithmetic command
        return { words: [command[i + 1] === '(' ? '((' : '('], sources: ['('], rest: '' };
      end(i);
      return { words, sources, rest: '' };
    } else {
      // `tool>out`, `tool&>log`: the shell splits the word before the operator.
      if (c === '<' || c === '>' || (c === '&' && command[i + 1] === '>')) {
        operatorAt(i);
        if (!inWord) start = i;
      }
      word += c;
      inWord = true;
    }
  }
  end(command.length);
  return { words, sources, rest: '' };
}

/** A path's last part (`/usr/bin/time` → `time`). */
function baseName(word: string): string {
  return word.split('/').pop() ?? '';
}

/** Index of the first word past wrapper `name`'s options and positional arguments, from `i` (after the name). */
function pastWrapper(words: readonly string[], i: number, name: string): number {
  const spec = WRAPPERS[name] as { valued: readonly string[]; positional?: number };
  let at = i;
  for (; at < words.length; at++) {
    const w = words[at] as string;
    if (w === '--') return at + 1 + (spec.positional ?? 0);
    if (name === 'env' && (isAssignment(w) || w === '-')) continue;
    // `-oL` (stdbuf), `-n5`, `--signal=KILL`: the value is in the word; `-n 5`: it is the next word.
    if (spec.valued.includes(w)) {
      at++;
      continue;
    }
    // The old `nice -10` and any other option: a flag.
    if (w.startsWith('-') && w.length > 1) continue;
    break;
  }
  return at + (spec.positional ?? 0);
}

function isAssignment(word: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*=/.test(word);
}

/**
 * The program a command runs: its first word's base name, past variable assignments and wrapper words (with
 * their options and arguments), into `sh -c '…'`; a shell running a script is named with the script (`bash
 * script`: Cromwell's commands are all `bash .../script`); a compound command is `(shell for)`. Empty when
 * the command names none.
 */
export function programOf(command: string, depth = 0): string {
  const { words, sources, rest } = splitFirstCommand(command);
  let i = 0;
  while (i < words.length) {
    const w = words[i] as string;
    const redirect = REDIRECTION.exec(sources[i] ?? '');
    if (redirect) i += redirect[2] === '' ? 2 : 1;
    else if (isAssignment(w)) i++;
    else if (Object.hasOwn(WRAPPERS, baseName(w))) i = pastWrapper(words, i + 1, baseName(w));
    else break;
  }
  const first = words[i];
  // Set-up before the command (`set -euo pipefail; cd dir && tool`): the command that follows it.
  if ((first === undefined || SETUP.has(first)) && rest.trim() !== '' && depth < 8)
    return programOf(rest, depth + 1) || (first ?? '');
  if (first === undefined) return '';
  if (COMPOUND.has(first)) return `(shell ${first})`;
  const prog = baseName(first);
  if (!SHELLS.has(prog)) return prog;
  // A shell: past its options to `-c 'command'` (also in `-ec`, `-xc`) or to the script it runs.
  for (let j = i + 1; j < words.length; j++) {
    const w = words[j] as string;
    if (/^-[A-Za-z]*c[A-Za-z]*$/.test(w)) {
      const inner = words[j + 1];
      return (inner !== undefined && depth < 2 && programOf(inner, depth + 1)) || prog;
    }
    if (SHELL_VALUED.test(w)) {
      j++;
      continue;
    }
    if (w === '--' || w === '-') continue;
    if (/^[-+]/.test(w)) continue;
    return `${prog} ${baseName(w)}`;
  }
  return prog;
}
