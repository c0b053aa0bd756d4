/**
 * Node flags of the pty host, added to the worker's own (bin/run.js forks it early, run-in-pty.ts otherwise). Each
 * task start is a fork of the host (node-pty's forkpty), which costs in proportion to the host's memory (its page
 * tables are copied, then its pages written since are copied on write): a young generation of at most 1 MB and no
 * V8 helper threads keep the host small. Its CPU per task start fell 15–20 % (scripts/bench/profile-worker.mjs,
 * 2,000 `/bin/true`, three interleaved pairs: 2,520 → 1,990, 2,205 → 1,955, 1,855 → 1,450 µs); its heap is a few MB.
 */
export const PTY_HOST_EXEC_ARGV: readonly string[] = ['--max-semi-space-size=1', '--single-threaded'];
