import { describe, expect, it } from 'vitest';

import { resolvePoolCluster } from '../../../src/slurm/pool-cluster.js';
import type { SiteConfig, SiteProfile } from '../../../src/slurm/site-profiles.js';

const site: SiteConfig = { default: undefined, clusters: new Map([['perlmutter', {} as SiteProfile]]) };

describe('the cluster of a submitted pool spec', () => {
  it('refuses an unknown -cl without -t too, as the original did (adversary 9 J5: stored silently)', () => {
    let reads = 0;
    const load = (): SiteConfig => {
      reads++;
      return site;
    };
    expect(() => resolvePoolCluster({ name: 'p', cluster: 'cori2' }, load)).toThrow(
      'unknown cluster "cori2"; known clusters: local, perlmutter, cori, jgi, tahoma',
    );
    expect(resolvePoolCluster({ name: 'p', cluster: 'perlmutter' }, load)).toEqual({
      name: 'p',
      cluster: 'perlmutter',
    });
    expect(reads).toBe(2);
    // Cromwell's stanza gives -cl at every call: local and the original's sites read no file.
    for (const cluster of ['local', 'cori', 'jgi', 'tahoma', undefined]) {
      expect(resolvePoolCluster({ name: 'p', cluster }, load).cluster).toBe(cluster);
    }
    expect(reads).toBe(2);
  });

  const load = (): SiteConfig => site;
  it("takes the original's sites with -t too, served by hand where this site has no profile for them (adversary 15 P4)", () => {
    // The original's Cromwell stanza gives `-cl ${cluster} -t ${time}` at every call: each was refused.
    for (const cluster of ['cori', 'jgi', 'tahoma']) {
      expect(resolvePoolCluster({ name: 'p', cluster, time: '00:30:00' }, load)).toEqual({
        name: 'p',
        cluster: 'local',
        time: '00:30:00',
      });
    }
    expect(() => resolvePoolCluster({ name: 'p', cluster: 'cori2', time: '00:30:00' }, load)).toThrow(
      /unknown cluster "cori2"/,
    );
  });
});

describe('a dynamic pool spec', () => {
  it("takes the cluster's defaults for what it leaves out, so the record says what each worker gets (review: the report's nwpn)", () => {
    const withDefaults: SiteConfig = {
      default: 'big',
      clusters: new Map([['big', { defaults: { cpu: 64, mem: '100G', nwpn: 4 } } as unknown as SiteProfile]]),
    };
    expect(resolvePoolCluster({ name: 'p', time: '01:00:00' }, () => withDefaults)).toEqual({
      name: 'p',
      time: '01:00:00',
      cluster: 'big',
      cpu: 64,
      mem: '100G',
      nwpn: 4,
    });
    // What the submit gives wins.
    expect(
      resolvePoolCluster({ name: 'p', time: '01:00:00', cpu: 8, nwpn: 1 }, () => withDefaults),
    ).toMatchObject({ cpu: 8, nwpn: 1, mem: '100G' });
  });
});

describe('where a failed sbatch’s allocation is looked for', () => {
  it("names the unsure pools' profiles' Slurm clusters (review: a remote cluster's job is in no registry yet)", async () => {
    const { slurmClustersOfPools } = await import('../../../src/slurm/pool-cluster.js');
    const profile = (sbatchFlags: string[], sbatch: string[] = []) =>
      ({ sbatchFlags, sbatch, defaults: {} }) as unknown as SiteProfile;
    const multi: SiteConfig = {
      default: undefined,
      clusters: new Map([
        ['perlmutter', profile([])],
        ['escori', profile(['--clusters=escori'])],
        ['dori', profile([], ['-M', 'dori'])],
      ]),
    };
    expect(slurmClustersOfPools(['escori', 'perlmutter', 'dori', undefined, 'gone'], () => multi)).toEqual([
      'dori',
      'escori',
    ]);
    expect(
      slurmClustersOfPools(['escori'], () => {
        throw new Error('unreadable site file');
      }),
    ).toEqual([]);
  });
});
