import { InvalidInputError } from '../errors.js';

/** The task id of isalive/status/kill: `-tid N` first, else the positional id (legacy `jtm-isalive 5`). */
export function resolveTaskId(flag: string | undefined, arg: string | undefined): number {
  const raw = flag ?? arg;
  if (raw === undefined) throw new InvalidInputError('no task id given: use -tid N');
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) {
    throw new InvalidInputError(`invalid task id ${JSON.stringify(raw)}: expected a positive integer`);
  }
  return Number(raw);
}
