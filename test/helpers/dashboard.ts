import { startJtm, type BackgroundProcess } from './cli.js';
import { waitFor } from './env.js';

/** Starts `jtm dashboard --port 0` and resolves with the URL it prints once listening. */
export async function startDashboard(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ proc: BackgroundProcess; url: string }> {
  const proc = startJtm(['dashboard', '--port', '0', ...args], env);
  const url = await waitFor(
    () => /dashboard listening on (http:\/\/\S+)/.exec(proc.output())?.[1],
    'dashboard listening',
    30_000,
  );
  return { proc, url };
}
