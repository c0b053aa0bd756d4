/** Characters bash takes as they are in a word: no quoting, expansion, globbing or operator among them. */
const PLAIN = 'A-Za-z0-9_@%+=:,./-';
const PLAIN_WORD = new RegExp(`^[${PLAIN}]+$`);

/**
 * Shell quoting for batch scripts. Every value that comes from a user, a task or a flag is either
 * validated against a strict pattern or passed through `quote`, so it is one literal word to bash.
 */
export function quote(value: string): string {
  if (value.includes('\0')) throw new Error('a NUL byte cannot be placed in a shell script');
  if (PLAIN_WORD.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** An `sbatch` option (`--name`, `--name=value`, `-x`): no spaces, quotes or shell metacharacters. */
export const SBATCH_OPTION = new RegExp(`^(--[A-Za-z][A-Za-z0-9-]*(=[${PLAIN}]+)?|-[A-Za-z])$`);

/**
 * Shell text of plain words (a leading `~` allowed): each word of plain characters, single-quoted parts (a path
 * with a space: `'/opt/my jtm/bin/jtm'`), or both joined; no other shell syntax. What an admin's command line
 * (JTM_COMMAND) may be where it is written into a batch script as it is.
 */
export const SHELL_WORDS = new RegExp(
  `^(?:[~${PLAIN}]|'[^'\\p{Cc}]*')+(?: +(?:[~${PLAIN}]|'[^'\\p{Cc}]*')+)*$`,
  'u',
);
