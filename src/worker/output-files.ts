import { stat } from 'node:fs/promises';

/** Expands `$VAR` and `${VAR}` from `env`; unknown variables become empty, as in the shell. */
export function expandVars(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (_m, a?: string, b?: string) => {
      return env[(a ?? b) as string] ?? '';
    },
  );
}

/**
 * Checks a task's `output_files` (comma separated) after it exited 0: each must exist and, unless
 * `allowEmpty`, be non-empty. Shared filesystems can be slow to show new files, so a missing file is
 * looked for again a few times with growing pauses (3 tries: 0 s, then `firstPauseMs`, then ×1.5).
 * Returns the problems, empty when all is well.
 */
export async function checkOutputFiles(
  list: string,
  opts: {
    env: Readonly<Record<string, string | undefined>>;
    cwd: string;
    allowEmpty: boolean;
    tries?: number;
    firstPauseMs?: number;
  },
): Promise<string[]> {
  const paths = list
    .split(',')
    .map(p => expandVars(p.trim(), opts.env))
    .filter(p => p !== '')
    .map(p => (p.startsWith('/') ? p : `${opts.cwd}/${p}`));
  let problems: string[] = [];
  let pause = opts.firstPauseMs ?? 1000;
  const tries = opts.tries ?? 3;
  for (let attempt = 1; attempt <= tries; attempt++) {
    problems = [];
    for (const p of paths) {
      try {
        const s = await stat(p);
        if (!s.isFile()) problems.push(`${p} is not a file`);
        else if (s.size === 0 && !opts.allowEmpty) problems.push(`${p} is empty`);
      } catch {
        problems.push(`${p} is missing`);
      }
    }
    if (problems.length === 0 || attempt === tries) break;
    await new Promise(r => setTimeout(r, pause));
    pause *= 1.5;
  }
  return problems;
}
