import { Args, Flags } from '@oclif/core';

// The check itself lives apart from oclif, for the fast path of bin/run.js.
export { resolveTaskId } from './resolve-task-id.js';

/** `-tid N` (also `--task_id`, `--task-id`) or a positional id (legacy `jtm-isalive 5`). */
export const taskIdFlag = {
  task_id: Flags.string({ description: 'task id (-tid)' }),
};
export const taskIdArg = {
  id: Args.string({ description: 'task id (instead of -tid)', required: false }),
};
