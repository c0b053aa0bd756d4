import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { resolveTaskId, taskIdArg, taskIdFlag } from '../src/cli/task-id.js';
import { InvalidInputError } from '../src/errors.js';
import { getResourceLog, resourceLogCsv, type ResourceLog } from '../src/tasks/resource-log.js';

export default class ResourceLogCommand extends BaseCommand<typeof ResourceLogCommand> {
  static override args = taskIdArg;
  static override description = `Prints {"task_id": N, "resource_log": [{child_pid, clone_time_rate, cpu_load, end_date, host_name, ...}, ...]} (the original's 24 columns, in its README order), read from Redis: works from any host. --csv prints CSV with a header (not with --json). cpu_load is % of one core over the sampling interval; rmem_usage/vmem_usage are MB summed over the task's process tree. Exit codes: 0 printed; 1 unknown id or invalid id; 255 Redis unreachable.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %> -tid 42',
    '<%= config.bin %> <%= command.id %> -tid 42 --csv',
  ];
  static override flags = { ...taskIdFlag, csv: Flags.boolean({ description: 'print CSV instead of JSON' }) };
  static override summary = "Print a task's resource samples.";

  async run(): Promise<ResourceLog> {
    // Both would print two documents on stdout, which no reader can parse.
    if (this.flags.csv && this.jsonEnabled()) throw new InvalidInputError('give --csv or --json, not both');
    const id = resolveTaskId(this.flags.task_id, this.args.id);
    const log = await getResourceLog(await this.context(), id);
    if (this.flags.csv) process.stdout.write(resourceLogCsv(log));
    else if (!this.jsonEnabled()) this.log(JSON.stringify(log, null, 2));
    return log;
  }
}
