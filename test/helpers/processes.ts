import { execFileSync } from 'node:child_process';

/** Live processes whose command line matches `pattern` (`pgrep -f`: an extended regular expression). */
export function processesMatching(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}
