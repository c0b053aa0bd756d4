// A site profile that sends allocations to another cluster (`sbatch_flags: ["--clusters=dori"]`, the example
// "dori" profile): squeue and scancel see such jobs only when told the cluster. Without it the manager took
// each allocation for ended at the next sweep, submitted another every sweep and failed the pool's tasks
// ("ended without any worker connecting"), and remove-pool's scancel missed them (adversarial test 4). A
// second cluster needs slurmdbd, which the project's test Slurm does not run: these are the pure parts, with
// squeue's and sbatch's multi-cluster output as Slurm prints it (squeue -M: a `CLUSTER: <name>` line before
// each cluster's jobs; sbatch --parsable: `<id>;<cluster>`).
import { describe, expect, it } from 'vitest';

import {
  ActiveJobs,
  clusterOption,
  clustersOf,
  isLaunchFailureHold,
  parseSqueue,
  splitJobKey,
} from '../../../src/slurm/slurm-commands.js';

describe('jobs on other clusters', () => {
  it('keys the jobs squeue -M lists by id;cluster, and a plain squeue’s by id', () => {
    const jobs = new ActiveJobs();
    parseSqueue('12|RUNNING|None\n13|PENDING|Resources\n', false, jobs);
    parseSqueue(
      'CLUSTER: dori\n34|PENDING|Priority\n35|COMPLETING|None\n\nCLUSTER: escori\n34|RUNNING|None\n',
      true,
      jobs,
    );
    expect(Object.fromEntries(jobs)).toEqual({
      '12': 'running',
      '13': 'pending',
      '34;dori': 'pending',
      '35;dori': 'running',
      '34;escori': 'running',
    });
  });

  it('takes a pending job with a hold for held, with its reason (adversary 18 S1)', () => {
    const jobs = new ActiveJobs();
    parseSqueue(
      '10|PENDING|JobHeldAdmin\n11|PENDING|JobHeldUser\n4|PENDING|job requeued in held state\n' +
        '5|PENDING|launch failed requeued held\n6|PENDING|BeginTime\n7|RUNNING|None\n' +
        '8|PENDING|JobHoldMaxRequeue\n9|REQUEUE_HOLD|None\n12|SUSPENDED|None\n',
      false,
      jobs,
    );
    expect(Object.fromEntries(jobs)).toEqual({
      '10': 'held',
      '11': 'held',
      '4': 'held',
      '5': 'held',
      '6': 'pending',
      '7': 'running',
      '8': 'held',
      '9': 'held',
      '12': 'suspended',
    });
    expect(jobs.holdReasons.get('10')).toBe('JobHeldAdmin');
    expect(jobs.holdReasons.has('6')).toBe(false);
    expect(isLaunchFailureHold(jobs.holdReasons.get('5'))).toBe(true);
    expect(isLaunchFailureHold(jobs.holdReasons.get('4'))).toBe(false);
  });

  it('finds the one cluster sbatch options name, in every form sbatch takes', () => {
    expect(clusterOption(['--clusters=dori'])).toBe('dori');
    expect(clusterOption(['--clusters', 'dori'])).toBe('dori');
    expect(clusterOption(['-M', 'dori'])).toBe('dori');
    expect(clusterOption(['-Mdori'])).toBe('dori');
    expect(clusterOption(['--qos=x', '--clusters=a', '--clusters=b'])).toBe('b');
    // Several: Slurm picks, and --parsable says which.
    expect(clusterOption(['--clusters=a,b'])).toBeUndefined();
    expect(clusterOption(['--qos=x', '--exclusive'])).toBeUndefined();
    // As sbatch reads them (adversary 39 F4): its other name, an abbreviation; not --cluster-constraint.
    expect(clusterOption(['--cluster=dori'])).toBe('dori');
    expect(clusterOption(['--cluste', 'dori'])).toBeUndefined();
    expect(clusterOption(['--clusters-', 'dori'])).toBeUndefined();
    expect(clusterOption(['--clusters', 'dori', '--cluster-c=x'])).toBe('dori');
  });

  it('splits a key and names the other clusters of a registry', () => {
    expect(splitJobKey('34;dori')).toEqual({ id: '34', cluster: 'dori' });
    expect(splitJobKey('34')).toEqual({ id: '34', cluster: undefined });
    expect(clustersOf(['1', '2;dori', '3;escori', '4;dori'])).toEqual(['dori', 'escori']);
    expect(clustersOf(['1', '2'])).toEqual([]);
  });
});

describe('the allocations a manager booked, found by their comment', () => {
  it('keeps only this deployment’s, with the pool from the job name (adversary 11 L9)', async () => {
    const { parseManagedJobs } = await import('../../../src/slurm/slurm-commands.js');
    const out = new Map();
    const mine = 'jtm-managed:abc123';
    parseManagedJobs(
      `40|RUNNING|None|jtm-sc|${mine}\n41|PENDING|Priority|jtm-sc|${mine}\n42|RUNNING|None|jtm-sc|jtm-managed:other\n43|RUNNING|None|bash|${mine}\n44|PENDING|None|jtm-a_b|(null)\n`,
      false,
      mine,
      out,
    );
    parseManagedJobs(`CLUSTER: dori\n7|CONFIGURING|None|jtm-big|${mine}\n`, true, mine, out);
    expect([...out]).toEqual([
      ['40', { pool: 'sc', state: 'running' }],
      ['41', { pool: 'sc', state: 'pending' }],
      ['7;dori', { pool: 'big', state: 'pending' }],
    ]);
  });
});
