import { readFileSync } from 'node:fs';

import { Cluster, Redis, type RedisOptions } from 'ioredis';

import type { Config } from '../config.js';
import { RedisUnavailableError } from '../errors.js';

export type RedisClient = Redis | Cluster;

/**
 * `client`: CLI commands. They fail fast: a short connect window, no offline queue, so a dead Redis
 * gives one clear error instead of a hang. `worker`: long-lived processes (workers, manager); they
 * retry forever, as BullMQ requires (`maxRetriesPerRequest: null`).
 */
export type ConnectionRole = 'client' | 'worker';

const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** The URL with its password replaced by `***`, for messages and logs. */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)([^@/]*)@/i, (_m, scheme: string, auth: string) => {
    const user = auth.includes(':') ? auth.slice(0, auth.indexOf(':')) : '';
    return `${scheme}${user ? `${user}:` : ''}***@`;
  });
}

export function redisLocation(config: Config): string {
  return maskUrl(config.redisUrl ?? DEFAULT_URL);
}

interface ParsedUrl {
  kind: 'single' | 'cluster' | 'sentinel';
  url: string;
  nodes: { host: string; port: number }[];
  options: RedisOptions;
  sentinelName?: string;
}

/**
 * Accepts redis://, rediss:// (TLS), redis+cluster:// / rediss+cluster:// with comma-separated seed nodes,
 * and redis+sentinel://host:port,host:port/<master name>.
 */
export function parseRedisUrl(raw: string, config: Config): ParsedUrl {
  const m = /^(rediss?)(?:\+(cluster|sentinel))?:\/\/(?:([^@/]*)@)?([^/?#]+)(?:\/([^?#]*))?/i.exec(raw);
  if (!m) throw new RedisUnavailableError(maskUrl(raw), new Error('not a redis:// or rediss:// URL'));
  const [, scheme = 'redis', mode, auth, hosts = '', path] = m;
  const options: RedisOptions = {};
  if (auth) {
    const i = auth.indexOf(':');
    const user = decodeURIComponent(i >= 0 ? auth.slice(0, i) : '');
    const password = decodeURIComponent(i >= 0 ? auth.slice(i + 1) : auth);
    if (user) options.username = user;
    if (password) options.password = password;
  }
  if (scheme.toLowerCase() === 'rediss') {
    options.tls = {
      ...(config.redisTlsCa ? { ca: readFileSync(config.redisTlsCa) } : {}),
      ...(config.redisTlsCert ? { cert: readFileSync(config.redisTlsCert) } : {}),
      ...(config.redisTlsKey ? { key: readFileSync(config.redisTlsKey) } : {}),
    };
  }
  const nodes = hosts.split(',').map(h => {
    const [host, port] = h.split(':');
    return { host: host || '127.0.0.1', port: Number(port || 6379) };
  });
  if (mode === 'cluster') return { kind: 'cluster', url: raw, nodes, options };
  if (mode === 'sentinel')
    return { kind: 'sentinel', url: raw, nodes, options, sentinelName: path || 'mymaster' };
  const db = path && /^\d+$/.test(path) ? Number(path) : undefined;
  if (db !== undefined) options.db = db;
  return { kind: 'single', url: raw, nodes, options };
}

function roleOptions(role: ConnectionRole, config: Config): RedisOptions {
  if (role === 'worker') {
    return {
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      retryStrategy: times => Math.min(200 * times, 5000),
    };
  }
  const deadline = Date.now() + config.connectTimeoutMs;
  return {
    lazyConnect: true,
    connectTimeout: config.connectTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: () => (Date.now() < deadline ? 100 : null),
  };
}

/** Creates a connection for `role`; a client connection is connected (or has failed) when this resolves. */
export async function createConnection(config: Config, role: ConnectionRole): Promise<RedisClient> {
  const parsed = parseRedisUrl(config.redisUrl ?? DEFAULT_URL, config);
  const base: RedisOptions = {
    ...parsed.options,
    ...roleOptions(role, config),
    connectionName: `jtm-${role}`,
  };
  let redis: RedisClient;
  if (parsed.kind === 'cluster') {
    redis = new Cluster(parsed.nodes, {
      redisOptions: base,
      lazyConnect: role === 'client',
      enableOfflineQueue: base.enableOfflineQueue ?? true,
      clusterRetryStrategy: base.retryStrategy,
    });
  } else if (parsed.kind === 'sentinel') {
    redis = new Redis({
      ...base,
      sentinels: parsed.nodes,
      name: parsed.sentinelName,
    });
  } else {
    const node = parsed.nodes[0] ?? { host: '127.0.0.1', port: 6379 };
    redis = new Redis({ ...base, host: node.host, port: node.port });
  }
  // Errors surface through the commands that fail; without a listener ioredis would print them.
  redis.on('error', () => {});
  if (role === 'client') {
    try {
      await withTimeout(redis.connect(), config.connectTimeoutMs + 500);
    } catch (err) {
      redis.disconnect();
      throw new RedisUnavailableError(redisLocation(config), err);
    }
  }
  return redis;
}

async function withTimeout<T>(p: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes a connection, politely first, and never hangs on a dead server. */
export async function closeConnection(redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await withTimeout(redis.quit(), 1000);
  } catch {
    redis.disconnect();
  }
}

/** True for errors that mean Redis could not be reached or did not answer (worth a retry). */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof RedisUnavailableError) return true;
  const msg = err instanceof Error ? err.message : String(err);
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|Connection is closed|Stream isn't writeable|enableOfflineQueue|no answer within|Reached the max retries|LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN/i.test(
    msg,
  );
}
