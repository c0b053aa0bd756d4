/** Where Redis is, as messages name it: the URL with its password masked. No dependencies (the CLI's fast path reports errors with it). */
import { createHash } from 'node:crypto';

import type { Config } from '../config.js';

export const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** The URL with its password replaced by `***`, for messages and logs. */
export function maskUrl(url: string): string {
  // Everything up to the last `@` is the user and password: a generated password may hold `/`, `@` or `#`
  // (which a URL should percent-encode, and often does not); masking too much is the safe side.
  return url.replace(/^([a-z+]+:\/\/)(.*)@/is, (_m, scheme: string, auth: string) => {
    const user = auth.includes(':') ? auth.slice(0, auth.indexOf(':')) : '';
    return `${scheme}${user ? `${user}:` : ''}***@`;
  });
}

export function redisLocation(config: Config): string {
  return maskUrl(config.redisUrl ?? DEFAULT_URL);
}

/**
 * The deployment's identifier (JTM_TASK_SCOPE of its tasks, the comment of its Slurm allocations): a digest of the Redis URL (its password left out: the
 * digest is visible to every task) and the key prefix. Two names for one Redis give two scopes, which only
 * makes a worker miss leftovers of the other name's tasks, never kill a run it cannot see in its Redis.
 */
export function deploymentScope(config: Pick<Config, 'redisUrl' | 'prefix'>): string {
  let url = config.redisUrl ?? '';
  try {
    const u = new URL(url);
    u.password = '';
    url = u.toString();
  } catch {
    // not a URL: used as it is, without a password to hide
  }
  return createHash('sha256').update(`${url}\0${config.prefix}`).digest('hex').slice(0, 16);
}
