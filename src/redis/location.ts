/** Where Redis is, as messages name it: the URL with its password masked. No dependencies (the CLI's fast path reports errors with it). */
import { createHash } from 'node:crypto';

import type { Config } from '../config.js';

export const DEFAULT_URL = 'redis://127.0.0.1:6379';

/**
 * The URL with its password replaced by `***`, for messages and logs, whatever its shape: everything from after
 * `//` (or from the start) to the last `@` is the user and password. A generated password may hold `/`, `@` or
 * `#` (which a URL should percent-encode, and often does not), and a URL may be cut after its `@` (a template
 * whose host variable is empty) or have its scheme mistyped (`redis:/`, `redis:`, none): all printed the password
 * in clear (adversary 40 H1). Masking too much is the safe side: the user is kept only in a `scheme://user:` URL.
 */
export function maskUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at < 0) {
    // No `@`: a `user:password` whose `@host` is missing reads as host `user` and port `password`; once a part is
    // masked, what follows may be more of the password (an unencoded `#`, `?` or `/` in it: adversary 42 H1), so
    // it goes too. Not `scheme://…` at all: only a redis scheme's letters are kept.
    const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url);
    if (!m) return `${/^rediss?(?:\+[a-z]+)?:\/?/i.exec(url)?.[0] ?? ''}${url.includes(':') ? '***' : url}`;
    const hosts = m[2] ?? '';
    const parts = hosts.split(',');
    // From the first part that can only be `user:password` on, all of it: an unencoded `,` in the password made
    // its end read as a second host (adversary 42 H1).
    const first = parts.findIndex(p => maskHostPart(p) !== p);
    if (first < 0) return url;
    return `${m[1] ?? ''}${[...parts.slice(0, first), maskHostPart(parts[first] ?? '')].join(',')}`;
  }
  const slashes = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  if (slashes !== undefined && slashes.length <= at) {
    const auth = url.slice(slashes.length, at);
    const colon = auth.indexOf(':');
    const user = colon > 0 && !/[/?#]/.test(auth.slice(0, colon)) ? auth.slice(0, colon) : '';
    return `${slashes}${user ? `${user}:` : ''}***${url.slice(at)}`;
  }
  // Not scheme://…: a redis scheme mistyped keeps its letters (they say what is wrong), nothing else before the @.
  const scheme = /^rediss?(?:\+[a-z]+)?:\/?/i.exec(url)?.[0] ?? '';
  return `${scheme}***${url.slice(at)}`;
}

/**
 * One `host:port` of a URL with what follows its first `:` masked when it cannot be a port (anything but digits,
 * colons and dots: `jtm:s3cr3tPW`, a user and password whose `@host` is missing), for messages that quote it.
 * `:7400:9`, `::1` and `h:99999` stay as written (they say what is wrong), so does a bracketed IPv6 address.
 */
export function maskHostPart(part: string): string {
  if (part.startsWith('[')) return part;
  const colon = part.indexOf(':');
  return colon >= 0 && /[^\d:.]/.test(part.slice(colon + 1)) ? `${part.slice(0, colon)}:***` : part;
}

export function redisLocation(config: Config): string {
  return maskUrl(config.redisUrl ?? DEFAULT_URL);
}

/**
 * The deployment's identifier (JTM_TASK_SCOPE of its tasks, the comment of its Slurm allocations): a digest of
 * what names the data behind the Redis URL (redisIdentity: no password, which every task could read, and no
 * spelling) and the key prefix. Two host names for one server still give two scopes, which only makes a worker
 * miss leftovers of the other name's tasks, never kill a run it cannot see in its Redis.
 */
export function deploymentScope(config: Pick<Config, 'redisUrl' | 'prefix'>): string {
  return createHash('sha256')
    .update(`${redisIdentity(config.redisUrl ?? DEFAULT_URL)}\0${config.prefix}`)
    .digest('hex')
    .slice(0, 16);
}

const LOOPBACK = new Set(['', 'localhost', '127.0.0.1', '::1', '[::1]']);

/**
 * The server(s) and database a Redis URL names, whatever its spelling: `redis://localhost:6379`,
 * `redis://127.0.0.1` and `redis://user@127.0.0.1:6379/0` are one (they split one deployment's leftover sweep
 * in two: a lost run seen through one spelling was never swept by workers using another, adversary 12 D12).
 * The scheme (TLS or not) and the password are left out, host names lower-cased, loopback names made one, the
 * default port, user and database filled in, a cluster's seed nodes sorted. The user stays: on a server whose
 * ACL user selects the keyspace (Dragonfly's namespaces), two users are two deployments, and a worker's sweep
 * would kill the other's live runs as lost (review). Not a URL: as it is.
 */
export function redisIdentity(raw: string): string {
  const m = /^rediss?(?:\+(cluster|sentinel))?:\/\/(?:(.*)@)?([^/?#@]+)(?:\/([^?#]*))?$/is.exec(raw);
  if (!m) return raw;
  const [, mode = 'single', auth, hosts = '', path = ''] = m;
  const colon = auth?.indexOf(':') ?? -1;
  const user = (auth !== undefined && colon >= 0 ? auth.slice(0, colon) : '') || 'default';
  const nodes = hosts
    .split(',')
    .map(h => {
      const v6 = /^(\[[^\]]*\])(?::(.*))?$/.exec(h);
      const [host, port] = v6 ? [v6[1] ?? '', v6[2]] : (h.split(':') as [string, string | undefined]);
      const name = host.toLowerCase();
      return `${LOOPBACK.has(name) ? 'loopback' : name}:${Number(port || 6379)}`;
    })
    .sort();
  const db = mode.toLowerCase() === 'sentinel' ? path || 'mymaster' : String(Number(path || 0));
  return `${mode.toLowerCase()}:${user}@${nodes.join(',')}/${db}`;
}
