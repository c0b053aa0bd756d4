/**
 * sbatch's long options (Slurm 22.05: `man sbatch`, and the undocumented ones its getopt table holds, which
 * `sbatch --test-only --<letter>` lists as the possibilities of an ambiguous prefix). sbatch reads them with getopt_long, which takes any
 * unambiguous prefix of a long option, in `#SBATCH` lines too: `--job-nam=x` is `--job-name=x`, `--hol` is
 * `--hold`. The refusals of `--sbatch-arg` matched full spellings only, and every refused option got through
 * abbreviated (adversary 39 F4).
 */
export const SBATCH_LONG_OPTIONS: readonly string[] = [
  'account',
  'acctg-freq',
  'array',
  'batch',
  'bb',
  'bbf',
  'begin',
  'chdir',
  'cluster-constraint',
  'clusters',
  'cluster',
  'comment',
  'constraint',
  'container',
  'context',
  'contiguous',
  'core-spec',
  'cores-per-socket',
  'cpu-freq',
  'cpus-per-gpu',
  'cpus-per-task',
  'deadline',
  'delay-boot',
  'dependency',
  'distribution',
  'error',
  'exclude',
  'exclusive',
  'export',
  'export-file',
  'extra-node-info',
  'get-user-env',
  'gid',
  'gpu-bind',
  'gpu-freq',
  'gpus',
  'gpus-per-node',
  'gpus-per-socket',
  'gpus-per-task',
  'gres',
  'gres-flags',
  'help',
  'hint',
  'hold',
  'ignore-pbs',
  'input',
  'job-name',
  'kill-on-invalid-dep',
  'licenses',
  'mail-type',
  'mail-user',
  'mcs-label',
  'mem',
  'mem-bind',
  'mem-per-cpu',
  'mem-per-gpu',
  'mincpus',
  'network',
  'nice',
  'no-kill',
  'no-requeue',
  'nodefile',
  'nodelist',
  'nodes',
  'ntasks',
  'ntasks-per-core',
  'ntasks-per-gpu',
  'ntasks-per-node',
  'ntasks-per-socket',
  'ntasks-per-tres',
  'open-mode',
  'output',
  'overcommit',
  'oversubscribe',
  'parsable',
  'partition',
  'power',
  'prefer',
  'priority',
  'profile',
  'propagate',
  'qos',
  'quiet',
  'reboot',
  'requeue',
  'reservation',
  'signal',
  'sockets-per-node',
  'spread-job',
  'switches',
  'tasks-per-node',
  'test-only',
  'thread-spec',
  'threads-per-core',
  'time',
  'time-min',
  'tmp',
  'uid',
  'usage',
  'use-min-nodes',
  'verbose',
  'version',
  'wait',
  'wait-all-nodes',
  'wckey',
  'wrap',
];

/** Options that are another's other name to sbatch. */
const ALIASES: Readonly<Record<string, string>> = {
  cluster: 'clusters',
  'tasks-per-node': 'ntasks-per-node',
};

/**
 * The long option sbatch reads `name` (without `--` and `=value`) as: itself when it is one (an exact match wins
 * over longer options it begins, as `--mem` over `--mem-per-cpu`), else the one option it begins; an alias as
 * the option it stands for (`--cluster` is `--clusters`). `ambiguous`:
 * it begins several (sbatch refuses it, naming them). A name that begins none is returned as is (sbatch refuses
 * it, or it is an option of a later Slurm). `refused` names options not in the table (a later Slurm's): a name
 * that begins one of them is read as it.
 */
export function sbatchLongName(
  name: string,
  refused: Iterable<string> = [],
): { name: string; ambiguous?: readonly string[] } {
  const known = new Set([...SBATCH_LONG_OPTIONS, ...refused]);
  if (known.has(name)) return { name: ALIASES[name] ?? name };
  const begun = [...known].filter(o => o.startsWith(name)).sort();
  if (begun.length === 1) return { name: ALIASES[begun[0]!] ?? begun[0]! };
  if (begun.length > 1) return { name, ambiguous: begun };
  return { name };
}
