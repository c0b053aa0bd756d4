/**
 * Task status names and codes, exactly as the original JTM (Cromwell configs and scripts rely on them).
 * Infrastructure level (like errors.ts): the Lua of src/redis/scripts.ts interpolates these codes, and
 * src/redis must not import a domain folder.
 */
export const TaskStatus = {
  ready: 0,
  queued: 1,
  pending: 2,
  running: 3,
  success: 4,
  outputerror: -1,
  failed: -2,
  outofresource: -3,
  terminated: -4,
  invalidtask: -5,
  timeout: -6,
  lostconnection: -7,
} as const;

export type TaskStatusName = keyof typeof TaskStatus;
export type TaskStatusCode = (typeof TaskStatus)[TaskStatusName];

const NAMES = new Map<number, TaskStatusName>(
  Object.entries(TaskStatus).map(([name, code]) => [code, name as TaskStatusName]),
);

export function statusName(code: number): TaskStatusName {
  return NAMES.get(code) ?? 'invalidtask';
}

/** ready, queued, pending and running: what `isalive` calls alive and `status` exits 0 for. */
export function isActive(code: number): boolean {
  return code >= 0 && code <= 3;
}

export function isFinal(code: number): boolean {
  return !isActive(code);
}
