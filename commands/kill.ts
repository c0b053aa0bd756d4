import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { resolveTaskId, taskIdArg, taskIdFlag } from '../src/cli/task-id.js';
import { parseDuration } from '../src/durations.js';
import { InvalidInputError } from '../src/errors.js';
import { killTask, type KillResult } from '../src/tasks/kill-task.js';

export default class Kill extends BaseCommand<typeof Kill> {
  static override args = taskIdArg;
  static override description = `A waiting task is removed from its queue and never starts; a running one is killed, whole process tree (SIGTERM, then SIGKILL after JTM_KILL_GRACE), by the worker that runs it, wherever it is. Ends in terminated (-4). Exit codes: 0 killed, or already ended (no change); 1 invalid id; 255 unknown id or Redis unreachable.`;
  static override examples = ['<%= config.bin %> <%= command.id %> -tid 42'];
  static override flags = {
    ...taskIdFlag,
    wait: Flags.string({ description: 'how long to wait for a running task to be gone', default: '15s' }),
  };
  static override summary = 'Kill a task, queued or running.';

  async run(): Promise<KillResult> {
    const id = resolveTaskId(this.flags.task_id, this.args.id);
    let waitMs: number;
    try {
      waitMs = parseDuration(this.flags.wait);
    } catch {
      throw new InvalidInputError(`invalid --wait ${this.flags.wait}`);
    }
    const result = await killTask(await this.context(), id, waitMs);
    this.logger.info(result, 'kill');
    return result;
  }
}
