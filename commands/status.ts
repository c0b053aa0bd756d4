import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { runStatus } from '../src/cli/actions/status.js';
import { taskIdArg, taskIdFlag } from '../src/cli/task-id.js';
import type { StatusAnswer, TaskDetails } from '../src/tasks/query-task.js';

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
    return runStatus(this.session(), { flags: this.flags, args: this.args });
  }
}
