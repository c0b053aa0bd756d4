import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { resolveTaskId, taskIdArg, taskIdFlag } from '../src/cli/task-id.js';
import { streamTaskOutput } from '../src/tasks/task-output.js';

export default class Logs extends BaseCommand<typeof Logs> {
  static override args = taskIdArg;
  static override description = `Shows what the task wrote to stdout, from any host (its worker streams it to Redis; long outputs keep their most recent part — the full output is in the task's stdout file). --follow keeps printing until the task ends. Exit codes: 0; 1 unknown or invalid id; 255 Redis unreachable.`;
  static override enableJsonFlag = false;
  static override examples = ['<%= config.bin %> <%= command.id %> -tid 42 --follow'];
  static override flags = {
    ...taskIdFlag,
    follow: Flags.boolean({ char: 'f', description: 'keep printing until the task ends' }),
  };
  static override summary = "Show a task's output, live.";

  async run(): Promise<void> {
    const id = resolveTaskId(this.flags.task_id, this.args.id);
    await streamTaskOutput(await this.context(), id, chunk => process.stdout.write(chunk), this.flags.follow);
  }
}
