import { BaseCommand } from '../src/cli/base-command.js';
import { runIsAlive } from '../src/cli/actions/isalive.js';
import { taskIdArg, taskIdFlag } from '../src/cli/task-id.js';

export default class IsAlive extends BaseCommand<typeof IsAlive> {
  static override args = taskIdArg;
  static override description = `Prints yes (exit 0) while the task is ready, queued, pending or running, no (exit 1) once it has ended or if the id is unknown. Cromwell reads any non-zero exit as "dead", so when Redis cannot be reached it retries for JTM_ISALIVE_RETRY (10s), then prints unknown and exits 0: a transient outage never kills a Cromwell job.`;
  static override examples = ['<%= config.bin %> <%= command.id %> -tid 42'];
  static override flags = taskIdFlag;
  static override summary = 'Tell whether a task is still alive (Cromwell check-alive).';

  async run(): Promise<{ task_id: number; alive: string }> {
    return runIsAlive(this.session(), { flags: this.flags, args: this.args });
  }
}
