/**
 * Blocks this thread for `ms` without spinning (Atomics.wait on a buffer no one notifies): for the rare short
 * waits of synchronous code — a non-blocking pipe with nothing to read or no room yet, a cgroup still emptying.
 */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
