/** Where Redis is, as messages name it: the URL with its password masked. No dependencies (the CLI's fast path reports errors with it). */
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
