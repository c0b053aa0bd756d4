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
});
