/**
 * `1 task`, `2 tasks`, `1 process`, `3 processes`: a count with its noun agreeing, for messages and pages
 * ("killed on request (1 processes)" and "1 tasks retried", adversary 21 F8).
 */
export function counted(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
