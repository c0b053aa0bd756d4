import { runJtm, taskIds } from './cli.js';

/** Submits one task with `jtm submit ARGS` and resolves with its id; a submit that prints none fails the test. */
export async function submitOne(env: Record<string, string>, args: readonly string[]): Promise<number> {
  const r = await runJtm(['submit', ...args], env);
  const [id] = taskIds(r.stdout);
  if (id === undefined)
    throw new Error(`jtm submit ${args.join(' ')} printed no task id (exit ${r.code}): ${r.stderr}`);
  return id;
}
