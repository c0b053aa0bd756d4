import { Args, Flags } from '@oclif/core';

// The check itself lives apart from oclif, for the fast path of bin/run.js.
export { resolveTaskId } from './resolve-task-id.js';

/** `-tid N` (also `--task_id`, `--task-id`) or a positional id (legacy `jtm-isalive 5`). */
export const taskIdFlag = {
  task_id: Flags.string({ description: 'task id (-tid)' }),
};
export const taskIdArg = {
  // Never read from stdin (oclif does that for a missing argument when stdin is not a terminal): in a
  // `while read id; do jtm status -tid $id --json; done < ids` loop the first call swallowed the rest of the
  // list, and `echo 5 | jtm kill -tid 1 --json` refused "two ids" and killed nothing; the fast path (without
  // --json) never read it, so the same command line answered differently.
  id: Args.string({ description: 'task id (instead of -tid)', required: false, ignoreStdin: true }),
};
