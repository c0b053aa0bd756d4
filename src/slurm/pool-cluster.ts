import { InvalidInputError } from '../errors.js';
import { dropUndefined } from '../fields.js';
import { LOCAL_CLUSTER, normaliseMemory, type PoolSpec } from '../pool-spec.js';
import { clusterOption } from './slurm-commands.js';
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
  // One of the original's sites with no profile here: a pool served by hand, as without -t. The original's
  // Cromwell stanza gives `-cl ${cluster} -t ${time}` at every call, and every call was refused "unknown
  // cluster" (adversary 15 P4).
  if (ORIGINAL_SITES.includes(cluster) && !site.clusters.has(cluster))
    return { ...spec, cluster: LOCAL_CLUSTER };
  // The profile's defaults for what the spec leaves out, written into it: the allocation is the same (the
  // manager would apply them), and the record then says what each worker got — the report divided by a -c of 1
  // and nwpn 1 where the site's defaults gave 64 CPUs to 4 workers per node.
  const d = resolveCluster(site, cluster).defaults;
  return dropUndefined({
    ...spec,
    cluster,
    cpu: spec.cpu ?? d.cpu,
    mem: spec.mem ?? normaliseMemory(d.mem, `cluster ${cluster}: default mem`),
    nwpn: spec.nwpn ?? d.nwpn,
  });
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

/**
 * The Slurm clusters (`--clusters`/`-M` of their profiles) that the allocations of these pools' site profiles
 * go to, beyond the local one: where to look for an allocation whose sbatch failed (it is in no registry
 * yet, so the clusters of registered jobs do not name it). Profiles that cannot be read name none.
 */
export function slurmClustersOfPools(
  clusters: readonly (string | undefined)[],
  loadSite: () => SiteConfig,
): string[] {
  let site: SiteConfig;
  try {
    site = loadSite();
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const name of clusters) {
    const profile = name === undefined ? undefined : site.clusters.get(name);
    const slurm = profile ? clusterOption([...profile.sbatchFlags, ...profile.sbatch]) : undefined;
    if (slurm) out.add(slurm);
  }
  return [...out].sort();
}
