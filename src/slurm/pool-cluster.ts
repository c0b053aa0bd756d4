import { LOCAL_CLUSTER, type PoolSpec } from '../pool-spec.js';
import { resolveCluster, type SiteConfig } from './site-profiles.js';

/**
 * The cluster a submitted pool spec will be provisioned on, checked at submit time so that a typo is one clear
 * error now rather than tasks failed later by the manager. A spec without a wall time, or on `local` (no
 * cluster and no site default also means local), is a manual pool: its workers are started by hand.
 */
export function resolvePoolCluster(spec: PoolSpec, loadSite: () => SiteConfig): PoolSpec {
  if (!spec.time) return spec;
  // Read only for pools that may be dynamic: a plain submit (what Cromwell runs per call) reads no file.
  const site = loadSite();
  const cluster = spec.cluster ?? site.default;
  if (cluster === undefined || cluster === LOCAL_CLUSTER) return { ...spec, cluster: LOCAL_CLUSTER };
  resolveCluster(site, cluster);
  return { ...spec, cluster };
}
