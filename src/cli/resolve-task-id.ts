import { InvalidInputError } from '../errors.js';
import { taskIdOfText } from '../tasks/job-data.js';

/** The task id of isalive/status/kill: `-tid N` or the positional id (legacy `jtm-isalive 5`), not two different ones. */
export function resolveTaskId(flag: string | undefined, arg: string | undefined): number {
  // `jtm kill 999 -tid 1`: which one was meant cannot be known, and guessing may kill the wrong task.
  if (flag !== undefined && arg !== undefined && flag.trim() !== arg.trim()) {
    throw new InvalidInputError(`two task ids given (-tid ${flag} and ${arg}): give one`);
  }
  const raw = flag ?? arg;
  if (raw === undefined) throw new InvalidInputError('no task id given: use -tid N');
  return taskIdOfText(raw);
}
