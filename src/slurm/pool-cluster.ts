import { InvalidInputError } from '../errors.js';
import { LOCAL_CLUSTER, type PoolSpec } from '../pool-spec.js';
import { resolveCluster, type SiteConfig } from './site-profiles.js';

/**
 * The cluster a submitted pool spec will be provisioned on, checked at submit time so that a typo is one clear
 * error now rather than tasks failed later by the manager. A spec without a wall time, or on `local` (no
 * cluster and no site default also means local), is a manual pool: its workers are started by hand.
 */
export function resolvePoolCluster(spec: PoolSpec, loadSite: () => SiteConfig): PoolSpec {
  if (!spec.time) {
    checkManualCluster(spec.cluster, loadSite);
    return spec;
  }
  // Read only for pools that may be dynamic: a plain submit (what Cromwell runs per call) reads no file.
  const site = loadSite();
  const cluster = spec.cluster ?? site.default;
  if (cluster === undefined || cluster === LOCAL_CLUSTER) return { ...spec, cluster: LOCAL_CLUSTER };
  resolveCluster(site, cluster);
  return { ...spec, cluster };
}

/** The sites the original accepted for `-cl` (COMPUTE_RESOURCES), whether or not this site has a profile for them. */
const ORIGINAL_SITES: readonly string[] = ['cori', 'jgi', 'tahoma'];

/**
 * `-cl` without a wall time names no allocation, but a typo (`-cl cori2`) must not be stored silently: the
 * original refused a site it did not know at every submit (adversary 9 J5). Its own site names and `local`
 * pass without reading any file (Cromwell's stanza gives `-cl` at every call); any other must have a profile.
 */
function checkManualCluster(cluster: string | undefined, loadSite: () => SiteConfig): void {
  if (cluster === undefined || cluster === LOCAL_CLUSTER || ORIGINAL_SITES.includes(cluster)) return;
  const site = loadSite();
  if (site.clusters.has(cluster)) return;
  const known = [...new Set([LOCAL_CLUSTER, ...site.clusters.keys(), ...ORIGINAL_SITES])].join(', ');
  throw new InvalidInputError(`unknown cluster ${JSON.stringify(cluster)}; known clusters: ${known}`);
}
