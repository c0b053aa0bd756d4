import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { runKill } from '../src/cli/actions/kill.js';
import { taskIdArg, taskIdFlag } from '../src/cli/task-id.js';
import type { KillResult } from '../src/tasks/kill-task.js';

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
    return runKill(this.session(), { flags: this.flags, args: this.args });
  }
}
