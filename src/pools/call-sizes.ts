import { formatHms, parseDuration } from '../durations.js';
import { isDynamicSpec, memoryMegabytes, type PoolSpec } from '../pool-spec.js';

/**
 * What one call asks of a shared dynamic pool's allocations, in the dimensions the pool's spec takes the most
 * of (MERGE_POOL_SPEC): time (ms), memory (MB), CPUs. 0 where the call gives none (the site's default).
 */
export interface CallSize {
  time: number;
  mem: number;
  cpu: number;
}

const DIMS = ['time', 'mem', 'cpu'] as const;

export function callSize(spec: PoolSpec | undefined): CallSize {
  return {
    time: spec?.time ? parseDuration(spec.time) : 0,
    mem: memoryMegabytes(spec?.mem),
    cpu: spec?.cpu ?? 0,
  };
}

/** The most of each dimension over `sizes` (all 0 for none): what one allocation must give them all. */
export function largestOf(sizes: Iterable<CallSize>): CallSize {
  const out: CallSize = { time: 0, mem: 0, cpu: 0 };
  for (const s of sizes) for (const d of DIMS) out[d] = Math.max(out[d], s[d]);
  return out;
}

/**
 * Which queued calls of a pool to fail when Slurm refuses its allocations for good. The allocation asks the
 * most any call of the pool asked; one call Slurm can never satisfy (`-m 100000`, 4 CPUs on a 2-CPU node) made
 * every sbatch fail, and all the pool's queued calls failed with it, then every later one, since the spec only
 * grew (adversary 25 F2). Now:
 *  - `'none'`: the allocation asked more than any queued or running call needs (that call has ended since):
 *    fail nothing, the spec shrinks to what they need and the next pass tries that;
 *  - the ids of the queued calls that ask the most in a dimension where the calls differ: they fail alone,
 *    the others get allocations sized without them;
 *  - `'all'`: the queued calls all ask the same (or the most is a running call's): the refusal is not about one
 *    call's size, and they all fail, as before.
 * Each answer but `'none'` fails at least one call, and `'none'` is followed by a smaller spec: a pool whose
 * sbatch keeps failing for another reason (a bad partition) still ends its calls.
 */
export function oversizedCalls(
  queued: ReadonlyMap<number, CallSize>,
  running: readonly CallSize[],
  asked: CallSize,
): number[] | 'none' | 'all' {
  const all = [...queued.values(), ...running];
  const need = largestOf(all);
  if (DIMS.some(d => asked[d] > need[d])) return 'none';
  const differ = DIMS.filter(d => all.some(s => s[d] < need[d]));
  const ids = [...queued].filter(([, s]) => differ.some(d => s[d] === need[d])).map(([id]) => id);
  return ids.length > 0 ? ids : 'all';
}

/**
 * The pool's spec after its calls that ask more than `need` have gone: each dimension from `need`, the rest
 * (account, partition...) as it was; a dimension none of them gives is left to the site's default.
 */
export function specOfSize(spec: PoolSpec, need: CallSize): PoolSpec {
  const out: PoolSpec = { ...spec };
  if (need.mem > 0) out.mem = `${Math.ceil(need.mem)}M`;
  else delete out.mem;
  if (need.cpu > 0) out.cpu = need.cpu;
  else delete out.cpu;
  // Kept for display and for the provisioning pass (which needs one); spec_time_ms 0 lets the next call's win.
  if (need.time > 0) out.time = formatHms(need.time);
  return out;
}

/**
 * Each pool's spec for the registry from one submit's tasks, in order: the longest time and the most memory and
 * CPUs of its dynamic specs, the rest from the last of them, as MERGE_POOL_SPEC merges one submit into the next.
 * The pool's last task alone was merged (a Map of pool → spec), so a task file whose larger call came first had
 * its pool's allocations booked for the smaller one.
 */
export function poolSpecsOf(
  tasks: Iterable<{ pool: string; pool_spec?: PoolSpec }>,
): Map<string, PoolSpec | undefined> {
  const out = new Map<string, PoolSpec | undefined>();
  for (const t of tasks) {
    const before = out.get(t.pool);
    if (!isDynamicSpec(t.pool_spec)) {
      if (!isDynamicSpec(before)) out.set(t.pool, t.pool_spec);
      continue;
    }
    out.set(t.pool, isDynamicSpec(before) ? widerSpec(before!, t.pool_spec!) : t.pool_spec);
  }
  return out;
}

function widerSpec(older: PoolSpec, newer: PoolSpec): PoolSpec {
  const [a, b] = [callSize(older), callSize(newer)];
  const out: PoolSpec = { ...newer };
  if (a.time > b.time) out.time = older.time;
  if (a.mem > b.mem) out.mem = older.mem;
  if (a.cpu > b.cpu) out.cpu = older.cpu;
  return out;
}
