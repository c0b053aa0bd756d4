import type { CommandSession } from '../session.js';
import { submitFromCli, type SubmitFlags } from '../submit-cli.js';

/** `jtm submit`: one `JTM task ID <n>` line per task, once all of them are durably queued. */
export async function runSubmit(
  s: CommandSession,
  { flags }: { flags: SubmitFlags },
): Promise<{ task_ids: number[] }> {
  const ids = await submitFromCli(() => s.context(), flags, s.config, process.cwd());
  // One write for all ids: a 10,000-task file printed line by line cost ~100 ms.
  if (ids.length > 0) s.print(`${ids.map(id => `JTM task ID ${id}`).join('\n')}\n`);
  return { task_ids: ids };
}
