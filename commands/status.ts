import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { resolveTaskId, taskIdArg, taskIdFlag } from '../src/cli/task-id.js';
import {
  getTaskDetails,
  getTaskStatus,
  type StatusAnswer,
  type TaskDetails,
} from '../src/tasks/query-task.js';

export default class Status extends BaseCommand<typeof Status> {
  static override args = taskIdArg;
  static override description = `Prints the status name: ready, queued, pending, running, success, outputerror, failed, outofresource, terminated, invalidtask (unknown id), timeout or lostconnection. With --json, the whole task record with its history. Exit codes: 0 while ready/queued/pending/running; 1 otherwise (and for an unknown id); 255 Redis unreachable.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %> -tid 42',
    '<%= config.bin %> <%= command.id %> -tid 42 --json',
  ];
  static override flags = { ...taskIdFlag, verbose: Flags.boolean({ hidden: true }) };
  static override summary = 'Show the status of a task.';

  async run(): Promise<StatusAnswer | TaskDetails> {
    const id = resolveTaskId(this.flags.task_id, this.args.id);
    const ctx = await this.context();
    if (this.jsonEnabled()) {
      const details = await getTaskDetails(ctx, id).catch(() => undefined);
      if (!details) process.exitCode = 1;
      else if (!(details.status >= 0 && details.status <= 3)) process.exitCode = 1;
      return details ?? (await getTaskStatus(ctx, id));
    }
    const answer = await getTaskStatus(ctx, id);
    this.log(answer.status);
    if (!answer.active) process.exitCode = 1;
    return answer;
  }
}
