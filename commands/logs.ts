import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { runLogs } from '../src/cli/actions/logs.js';
import { taskIdArg, taskIdFlag } from '../src/cli/task-id.js';

export default class Logs extends BaseCommand<typeof Logs> {
  static override args = taskIdArg;
  static override description = `Shows what the task wrote to stdout, byte for byte. After the end: the task's stdout file when it is readable on this host, else the copy its worker keeps in Redis (the last JTM_OUTPUT_KEEP_BYTES of it, 64 KiB by default, once the task has ended; JTM_OUTPUT_TAIL_BYTES, 1 MiB, while it runs; a log line on stderr says when earlier output was dropped). While it runs: the Redis copy, from any host, and what it no longer holds from the stdout file where that is readable here. --follow keeps printing until the task ends, every byte or a gap said: bytes neither in the Redis copy nor in a file readable here are named on stderr and make it exit 3. Exit codes: 0; 1 unknown or invalid id; 3 (--follow) some output could not be had; 255 Redis unreachable (--follow: for longer than JTM_FOLLOW_RETRY, 60 s; a shorter loss is ridden out, the output resumed where it stopped), or (--follow) the task's record gone from Redis meanwhile (flushed, evicted).`;
  static override enableJsonFlag = false;
  static override examples = ['<%= config.bin %> <%= command.id %> -tid 42 --follow'];
  static override flags = {
    ...taskIdFlag,
    follow: Flags.boolean({ char: 'f', description: 'keep printing until the task ends' }),
  };
  static override summary = "Show a task's output, live.";

  async run(): Promise<void> {
    return runLogs(this.session(), { flags: this.flags, args: this.args });
  }
}
