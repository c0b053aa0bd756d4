import { readInputFile } from '../input-file.js';

import { InvalidInputError } from '../errors.js';
import { dropUndefined } from '../fields.js';
import {
  LOCAL_CLUSTER,
  normaliseMemory,
  SLURM_CONSTRAINT,
  SLURM_WORD,
  validateTime,
  workersPerNode,
} from '../pool-spec.js';
import { SBATCH_OPTION } from './shell.js';

/** Defaults a site applies when neither the flags nor the pool spec say otherwise. */
export interface SiteDefaults {
  time?: string;
  cpu?: number;
  mem?: string;
  nwpn?: number;
  partition?: string;
  qos?: string;
  account?: string;
  constraint?: string;
}

/** One cluster of the site configuration file (JTM_SITE_CONFIG). */
export interface SiteProfile {
  name: string;
  description?: string;
  defaults: SiteDefaults;
  /** `#SBATCH --exclusive`. */
  exclusive: boolean;
  /** Pin each worker of a node to its own share of the node's allowed cores (taskset). */
  pinCores: boolean;
  /** Extra `#SBATCH` options, e.g. `--licenses=scratch`. */
  sbatch: string[];
  /** Extra options on the `sbatch` command line, e.g. `--clusters=escori`. */
  sbatchFlags: string[];
  /** Environment activation lines run before the workers (`module load ...`): written by the site admin. */
  env: string[];
}

export interface SiteConfig {
  /** Cluster used when a pool names none. */
  default?: string;
  clusters: Map<string, SiteProfile>;
}

const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const PROFILE_FIELDS = new Set([
  'description',
  'defaults',
  'exclusive',
  'pin_cores',
  'sbatch',
  'sbatch_flags',
  'env',
]);
const DEFAULT_FIELDS = new Set(['time', 'cpu', 'mem', 'nwpn', 'partition', 'qos', 'account', 'constraint']);

/** Reads and validates the site file; no file → only the built-in `local`. */
/** Largest site config: a few clusters' profiles are a few KB. */
const MAX_SITE_CONFIG_BYTES = 1024 * 1024;

export function loadSiteConfig(path: string | undefined): SiteConfig {
  if (!path) return { clusters: new Map() };
  // A regular file of a plausible size: /dev/zero as JTM_SITE_CONFIG took gigabytes, a FIFO hung.
  const text = readInputFile(path, 'site config', MAX_SITE_CONFIG_BYTES, { pipes: false });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`site config ${path}: ${(err as Error).message}`);
  }
  return parseSiteConfig(raw, path);
}

export function parseSiteConfig(raw: unknown, where = 'site config'): SiteConfig {
  const fail = (msg: string): never => {
    throw new InvalidInputError(`${where}: ${msg}`);
  };
  if (!isObject(raw)) return fail('must be a JSON object');
  const clustersRaw = raw['clusters'];
  if (!isObject(clustersRaw)) return fail('"clusters" must be an object of cluster name → profile');
  const clusters = new Map<string, SiteProfile>();
  for (const [name, p] of Object.entries(clustersRaw)) {
    // Lower case only: a pool's cluster is lower-cased (parsePoolFields, resolveCluster), so `-cl TEST` is `test`;
    // a profile named `Test` could never be matched, and said only "invalid cluster name".
    if (!NAME.test(name)) {
      fail(
        `invalid cluster name ${JSON.stringify(name)}: use lower-case letters, digits, '_', '.' or '-' (at most 64; -cl and a pool's cluster match it whatever their case)`,
      );
    }
    if (name === LOCAL_CLUSTER) fail(`"${LOCAL_CLUSTER}" is built in (no Slurm) and cannot be redefined`);
    if (!isObject(p)) return fail(`cluster ${name} must be an object`);
    for (const k of Object.keys(p)) {
      if (!PROFILE_FIELDS.has(k)) fail(`cluster ${name}: unknown field ${JSON.stringify(k)}`);
    }
    clusters.set(name, {
      name,
      description: optionalString(p['description'], `cluster ${name}: description`, fail),
      defaults: parseDefaults(p['defaults'], name, fail),
      exclusive:
        p['exclusive'] === undefined ? false : bool(p['exclusive'], `cluster ${name}: exclusive`, fail),
      pinCores:
        p['pin_cores'] === undefined ? false : bool(p['pin_cores'], `cluster ${name}: pin_cores`, fail),
      sbatch: options(p['sbatch'], `cluster ${name}: sbatch`, fail),
      sbatchFlags: options(p['sbatch_flags'], `cluster ${name}: sbatch_flags`, fail),
      env: lines(p['env'], `cluster ${name}: env`, fail),
    });
  }
  const def = raw['default'];
  if (def !== undefined && (typeof def !== 'string' || !clusters.has(def))) {
    fail(`"default" must name one of the clusters`);
  }
  return { default: def as string | undefined, clusters };
}

/** The profile of a cluster; `local` and unknown names are errors that say what is known. */
export function resolveCluster(site: SiteConfig, cluster: string | undefined): SiteProfile {
  const name = (cluster ?? site.default)?.toLowerCase();
  const known = [LOCAL_CLUSTER, ...site.clusters.keys()].join(', ');
  if (name === undefined) throw new InvalidInputError(`no cluster given (-cl); known clusters: ${known}`);
  if (name === LOCAL_CLUSTER) {
    throw new InvalidInputError(
      `cluster "local" has no Slurm: start workers with \`jtm worker -p POOL\` instead; clusters with Slurm: ${
        [...site.clusters.keys()].join(', ') || 'none (set JTM_SITE_CONFIG)'
      }`,
    );
  }
  const profile = site.clusters.get(name);
  if (!profile)
    throw new InvalidInputError(`unknown cluster ${JSON.stringify(name)}; known clusters: ${known}`);
  return profile;
}

type Fail = (msg: string) => never;

function parseDefaults(raw: unknown, name: string, fail: Fail): SiteDefaults {
  if (raw === undefined) return {};
  if (!isObject(raw)) return fail(`cluster ${name}: defaults must be an object`);
  for (const k of Object.keys(raw)) {
    if (!DEFAULT_FIELDS.has(k)) fail(`cluster ${name}: unknown default ${JSON.stringify(k)}`);
  }
  const word = (k: string, form = SLURM_WORD): string | undefined => {
    const v = raw[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !form.test(v))
      return fail(`cluster ${name}: invalid ${k} ${JSON.stringify(v)}`);
    return v;
  };
  const int = (k: string): number | undefined => {
    const v = raw[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
      return fail(`cluster ${name}: ${k} must be ≥ 1`);
    return v;
  };
  // Checked outside the try below: their fail() names the file already, and caught there it was named twice
  // ("sites.json: sites.json: cluster evil: invalid partition", adversary 34 L10).
  const cpu = int('cpu');
  const nwpn = int('nwpn');
  const words = {
    partition: word('partition'),
    qos: word('qos'),
    account: word('account'),
    constraint: word('constraint', SLURM_CONSTRAINT),
  };
  try {
    return dropUndefined({
      time: validateTime(raw['time'], `cluster ${name}: time`),
      cpu,
      mem: normaliseMemory(raw['mem'], `cluster ${name}: mem`),
      nwpn: nwpn === undefined ? undefined : workersPerNode(raw['nwpn'], `cluster ${name}: nwpn`),
      ...words,
    });
  } catch (err) {
    return fail((err as Error).message);
  }
}

function options(raw: unknown, what: string, fail: Fail): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) return fail(`${what} must be a list of options`);
  return raw.map(o =>
    typeof o === 'string' && SBATCH_OPTION.test(o)
      ? o
      : fail(
          `${what}: invalid option ${JSON.stringify(o)} (use --name or --name=value, no spaces or quotes)`,
        ),
  );
}

function lines(raw: unknown, what: string, fail: Fail): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) return fail(`${what} must be a list of shell lines`);
  return raw.map(l =>
    typeof l === 'string' && !/[\n\r\0]/.test(l) ? l : fail(`${what}: each entry must be one line of text`),
  );
}

function optionalString(raw: unknown, what: string, fail: Fail): string | undefined {
  if (raw === undefined) return undefined;
  return typeof raw === 'string' ? raw : fail(`${what} must be a string`);
}

function bool(raw: unknown, what: string, fail: Fail): boolean {
  return typeof raw === 'boolean' ? raw : fail(`${what} must be true or false`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
