/**
 * Shell quoting for batch scripts. Every value that comes from a user, a task or a flag is either
 * validated against a strict pattern or passed through `quote`, so it is one literal word to bash.
 */
export function quote(value: string): string {
  if (value.includes('\0')) throw new Error('a NUL byte cannot be placed in a shell script');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** An `sbatch` option (`--name`, `--name=value`, `-x`): no spaces, quotes or shell metacharacters. */
export const SBATCH_OPTION = /^(--[A-Za-z][A-Za-z0-9-]*(=[A-Za-z0-9_@%+=:,./-]+)?|-[A-Za-z])$/;
