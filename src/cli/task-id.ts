import { Args, Flags } from '@oclif/core';

import { InvalidInputError } from '../errors.js';

/** `-tid N` (also `--task_id`, `--task-id`) or a positional id (legacy `jtm-isalive 5`). */
export const taskIdFlag = {
  task_id: Flags.string({ description: 'task id (-tid)' }),
};
export const taskIdArg = {
  id: Args.string({ description: 'task id (instead of -tid)', required: false }),
};

export function resolveTaskId(flag: string | undefined, arg: string | undefined): number {
  const raw = flag ?? arg;
  if (raw === undefined) throw new InvalidInputError('no task id given: use -tid N');
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) {
    throw new InvalidInputError(`invalid task id ${JSON.stringify(raw)}: expected a positive integer`);
  }
  return Number(raw);
}
