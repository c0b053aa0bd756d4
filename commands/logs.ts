import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { resolveTaskId, taskIdArg, taskIdFlag } from '../src/cli/task-id.js';
import { RedisUnavailableError } from '../src/errors.js';
import { isConnectionError, redisLocation } from '../src/redis/connection.js';
import { streamTaskOutput } from '../src/tasks/task-output.js';

/** Writes bytes to stdout, waiting when the reader is slower (a 150 MB output is not held in memory). */
function writeOut(chunk: Buffer): Promise<void> | void {
  if (process.stdout.write(chunk)) return;
  return new Promise(r => process.stdout.once('drain', () => r()));
}

export default class Logs extends BaseCommand<typeof Logs> {
  static override args = taskIdArg;
  static override description = `Shows what the task wrote to stdout, byte for byte. After the end: the task's stdout file when it is readable on this host, else the copy its worker keeps in Redis (the last JTM_OUTPUT_TAIL_BYTES, 1 MiB by default; a log line on stderr says when earlier output was dropped). While it runs: the Redis copy, from any host. --follow keeps printing until the task ends. Exit codes: 0; 1 unknown or invalid id; 255 Redis unreachable.`;
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
      await streamTaskOutput(ctx, id, writeOut, this.flags.follow);
    } catch (err) {
      // Redis lost while following is Redis unavailable (255), as for every command, not invalid input.
      if (isConnectionError(err)) throw new RedisUnavailableError(redisLocation(this.jtm), err);
      throw err;
    }
  }
}
