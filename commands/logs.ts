import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { resolveTaskId, taskIdArg, taskIdFlag } from '../src/cli/task-id.js';
import { RedisUnavailableError } from '../src/errors.js';
import { isConnectionError, redisLocation } from '../src/redis/connection.js';
import { streamTaskOutput } from '../src/tasks/task-output.js';

export default class Logs extends BaseCommand<typeof Logs> {
  static override args = taskIdArg;
  static override description = `Shows what the task wrote to stdout, from any host (its worker streams it to Redis; long outputs keep their most recent part — the full output is in the task's stdout file). --follow keeps printing until the task ends. Exit codes: 0; 1 unknown or invalid id; 255 Redis unreachable, or lost while following.`;
  static override enableJsonFlag = false;
  static override examples = ['<%= config.bin %> <%= command.id %> -tid 42 --follow'];
  static override flags = {
    ...taskIdFlag,
    follow: Flags.boolean({ char: 'f', description: 'keep printing until the task ends' }),
  };
  static override summary = "Show a task's output, live.";

  async run(): Promise<void> {
    const id = resolveTaskId(this.flags.task_id, this.args.id);
    const ctx = await this.context();
    try {
      await streamTaskOutput(ctx, id, chunk => process.stdout.write(chunk), this.flags.follow);
    } catch (err) {
      // Redis lost while following is Redis unavailable (255), as for every command, not invalid input.
      if (isConnectionError(err)) throw new RedisUnavailableError(redisLocation(this.jtm), err);
      throw err;
    }
  }
}
