import { Cluster, Redis, type RedisOptions } from 'ioredis';

import type { Config } from '../config.js';
import {
  isAuthError,
  isReplyError,
  isTlsError,
  type JtmError,
  RedisAuthError,
  RedisTlsError,
  RedisUnavailableError,
  RedisUrlError,
  unusableRedisReason,
} from '../errors.js';
import { rateLimited, type Logger } from '../logger.js';
import { SentinelSocketConnector, StandaloneSocketConnector } from './connectors.js';
import { withStallAwareTimeout } from './stall-aware-timeout.js';
import {
  plainServerError,
  probeRefusal,
  tlsAdvice,
  tlsRefusal,
  tlsServerError,
  unusableReply,
  wasReset,
} from './connection-probes.js';
import { parseRedisUrl, type ParsedUrl } from './redis-url.js';
import { DEFAULT_URL, maskUrl, redisLocation } from './location.js';

export type RedisClient = Redis | Cluster;

/**
 * `client`: CLI commands. They fail fast: a short connect window, no offline queue, so a dead Redis
 * gives one clear error instead of a hang. `worker`: long-lived processes (workers, manager); they
 * retry forever, as BullMQ requires (`maxRetriesPerRequest: null`).
 */
export type ConnectionRole = 'client' | 'worker';

export { maskUrl, redisLocation } from './location.js';
export { isConnectionError } from '../errors.js';

/**
 * How long a CLI command may still wait for Redis: JTM_CONNECT_TIMEOUT counts from the start of the process,
 * so that start-up (loading oclif on a busy login node) does not add to what the user was promised — but the
 * connection itself always gets at least half of it: on a loaded node a slow start must not turn a healthy
 * Redis (a TLS handshake takes a few hundred ms there) into "unreachable" (seen: kill exiting 255 under load).
 */
function clientBudgetMs(config: Config): number {
  const left = config.connectTimeoutMs - Math.round(process.uptime() * 1000);
  return Math.max(Math.round(config.connectTimeoutMs / 2), left);
}

/**
 * The wall-time bound of a client's connection: time the process waited for a CPU does not count against
 * its budget (stall-aware-timeout.ts), up to twice JTM_CONNECT_TIMEOUT in all.
 */
function clientCapMs(config: Config): number {
  return config.connectTimeoutMs * 2;
}

/** How long a Sentinel may take to name the master before the next one is asked (see createConnection). */
const SENTINEL_COMMAND_TIMEOUT_MS = 1000;

/** A Cluster client's command time limit, in JTM_CONNECT_TIMEOUTs (see createConnection). */
const CLUSTER_COMMAND_TIMEOUT = 10;

/**
 * How long, after an outage, the manager waits for a live worker to connect again (and beat) before burying
 * anyone: past the longest wait between two of a daemon's attempts to reconnect (WORKER_RECONNECT_MAX_DELAY_MS and
 * its jitter), with room for a loaded node.
 */
export const RECONNECT_MAX_DELAY_MS = 5000;

/** The longest a daemon's connection (a worker's, the manager's) waits between two attempts to reconnect, less jitter. */
const WORKER_RECONNECT_MAX_DELAY_MS = 1000;

function roleOptions(role: ConnectionRole, config: Config): RedisOptions {
  if (role === 'worker') {
    return {
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      // Back soon after Redis is: a worker must beat again before its lease runs out (a restart of 2 s reconnected
      // only at 3 s, 200 ms × attempt, and with the last beat before it 2 s old every running task was stopped:
      // adversary 29 F2). At most a second apart, with a little jitter so a site's workers do not all come at once.
      retryStrategy: times =>
        Math.min(100 * times, WORKER_RECONNECT_MAX_DELAY_MS) + Math.floor(Math.random() * 200),
    };
  }
  // ioredis' own timers count wall time: they get the cap, and withStallAwareTimeout decides (see below).
  const cap = clientCapMs(config);
  const deadline = Date.now() + cap;
  return {
    lazyConnect: true,
    connectTimeout: cap,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: () => (Date.now() < deadline ? 100 : null),
    // ioredis lets a closing socket linger up to this long (2 s by default) waiting for the server's FIN,
    // which an unresponsive server never sends: a command that has failed must end within its timeout.
    disconnectTimeout: 100,
    // While Redis loads its dataset (LOADING, after a restart), ioredis looks again after the load's estimated
    // time, up to 10 s, on a timer that a disconnect does not clear: a command that had given up at its
    // timeout stayed until the load was over (3.5–9.6 s for a 1 s JTM_CONNECT_TIMEOUT: adversary 15 P9).
    maxLoadingRetryTime: 100,
  };
}

/** Creates a connection for `role`; a client connection is connected (or has failed) when this resolves. */
export async function createConnection(
  config: Config,
  role: ConnectionRole,
  logger?: Logger,
  /**
   * `longLived`: a client of a long-running program (the programmatic API), whose process start says nothing
   * of when it connects: its connection gets the whole JTM_CONNECT_TIMEOUT, counted from now (a program
   * connecting 4 s after its start was given half of a 3 s budget: adversary 22 L5).
   */
  opts: { longLived?: boolean } = {},
): Promise<RedisClient> {
  const parsed = parseRedisUrl(config.redisUrl ?? DEFAULT_URL, config);
  const base: RedisOptions = {
    ...parsed.options,
    ...roleOptions(role, config),
    connectionName: `jtm-${role}`,
    // In the options, so that BullMQ's copies of this connection (duplicate()) and a cluster's nodes get it too.
    Connector: StandaloneSocketConnector,
  };
  let redis: RedisClient;
  if (parsed.kind === 'cluster') {
    redis = new Cluster(parsed.nodes, {
      // A client's command that gets no answer fails after CLUSTER_COMMAND_TIMEOUT × JTM_CONNECT_TIMEOUT (30 s
      // by default): the connection is made through the masters that answer, and a command to one that is
      // stopped (SIGSTOP, a hung host) waited for it for ever — isalive and kill hung for the whole outage
      // instead of answering unknown / 255 (adversary 11 L2). Long enough for the last command of a bulk
      // submit queued behind the others (100,000 tasks: ≈ 7 s here; at the connection's cap of 6 s such a submit
      // failed). One Redis needs none: a stopped one fails the connection itself.
      redisOptions:
        role === 'client'
          ? { ...base, commandTimeout: CLUSTER_COMMAND_TIMEOUT * config.connectTimeoutMs }
          : base,
      lazyConnect: role === 'client',
      // The ready check asks CLUSTER INFO of one master taken at random, with no time limit: one master stopped
      // made a third of the connections to the healthy ones fail (adversary 11 L2). Without it, a cluster that
      // is down answers the first command CLUSTERDOWN, which is read as Redis unreachable.
      enableReadyCheck: false,
      enableOfflineQueue: base.enableOfflineQueue ?? true,
      clusterRetryStrategy: base.retryStrategy,
    });
  } else if (parsed.kind === 'sentinel') {
    redis = new Redis({
      ...base,
      Connector: SentinelSocketConnector,
      sentinels: parsed.nodes,
      name: parsed.sentinelName,
      // ioredis asks each Sentinel for the master on a connection of its own, which a disconnect does not reach:
      // without a time limit, a Sentinel that stopped answering (SIGSTOP, a hung host) held that question, and
      // the CLI command (isalive included), for ever; and the next Sentinel was never asked (review).
      sentinelCommandTimeout: Math.min(config.connectTimeoutMs, SENTINEL_COMMAND_TIMEOUT_MS),
    });
    // What ioredis does for its own Sentinel connector: the failover events are the client's.
    (redis as unknown as { connector: { emitter: unknown } }).connector.emitter = redis;
  } else {
    const node = parsed.nodes[0] ?? { host: '127.0.0.1', port: 6379 };
    redis = new Redis({ ...base, host: node.host, port: node.port });
  }
  // Refused credentials and failed TLS are final: they end the wait for a connection at once (see below).
  const logRepeat = logger && rateLimited(logger, config.logRepeatIntervalMs);
  const where = redisLocation(config);
  const finalError = (err: unknown): JtmError | undefined =>
    refusalOf(err, where, Boolean(parsed.options.tls));
  let onAuthFailure: ((err: Error) => void) | undefined;
  // Errors surface through the commands that fail; without a listener ioredis would print them (multi-line
  // stacks on stderr). Daemons log them, once per kind and interval (the logger rate-limits repeats).
  const onError = (err: Error): void => {
    // ioredis's ready check hears a BUSY script, then closes: the command got only "Connection is closed.".
    if (isReplyError(err) && unusableRedisReason(err) && !heardReplies.has(redis))
      heardReplies.set(redis, err);
    const final = finalError(err);
    if (final) {
      if (!heardRefusals.has(redis)) heardRefusals.set(redis, final);
      redis.emit(REFUSED, final);
      onAuthFailure?.(final);
    }
    logRepeat?.(
      'warn',
      `redis:${err.message.replace(/\d+/g, '#')}`,
      { err: err.message },
      'Redis connection error',
    );
  };
  redis.on('error', onError);
  // A Cluster reports what its nodes hear (a refused password, missing rights) as 'node error' only; its own
  // 'error' and the failed connect say "None of startup nodes is available": wrong credentials on a Cluster
  // site read as an outage, isalive answered unknown after 9.7 s and a worker waited for ever (adversary 35 F4).
  if (redis instanceof Cluster) redis.on('node error', (err: Error) => onError(err));
  const authFailed = new Promise<never>((_, reject) => {
    onAuthFailure = reject;
    const heard = heardRefusals.get(redis);
    if (heard) reject(heard);
  });
  authFailed.catch(() => {});
  if (role === 'client') {
    // Whether a connection was made at all (ioredis's 'connect': the socket is up, before its handshake): one
    // reset at the handshake is not a Redis that was never there (adversary 28 F7), which a follower rides out.
    let connected = false;
    redis.once('connect', () => (connected = true));
    try {
      await withStallAwareTimeout(
        Promise.race([redis.connect().then(() => checkDatabase(redis, parsed)), authFailed]),
        opts.longLived ? config.connectTimeoutMs : clientBudgetMs(config),
        clientCapMs(config),
      );
    } catch (err) {
      if (err instanceof RedisUrlError) {
        hardDisconnect(redis);
        throw err;
      }
      const answered = hasAnswered(redis);
      hardDisconnect(redis);
      const [final, reply] = await Promise.all([
        heardRefusals.get(redis) ?? finalError(err) ?? probeRefusal(parsed, where, err, finalError, answered),
        heardReplies.get(redis) ?? (wasReset(err) || answered ? unusableReply(parsed) : undefined),
      ]);
      if (final) throw final;
      throw new RedisUnavailableError(where, reply ?? err, { reached: connected || answered });
    } finally {
      onAuthFailure = undefined;
    }
  } else {
    // Daemons connect in the background and retry forever (Redis may come later), but wrong credentials
    // would be retried forever too: wait for the first answer, at most the connect timeout, to catch them.
    const ready = new Promise<void>(r => redis.once('ready', () => r()));
    try {
      await withTimeout(Promise.race([ready, authFailed]), config.connectTimeoutMs);
      await withTimeout(checkDatabase(redis, parsed), config.connectTimeoutMs);
    } catch (err) {
      if (err instanceof RedisUrlError) {
        hardDisconnect(redis);
        throw err;
      }
      // Read again after the probe: a refusal may have come meanwhile, before the watch below began.
      const [probed, tlsOnly, unusable] = await Promise.all([
        plainServerError(parsed, where),
        // A TLS server never sends a plain client a byte; a plain Redis never answers the probe (it would wait 1 s).
        hasAnswered(redis) ? undefined : tlsServerError(parsed, where),
        // Why it cannot serve yet, when it says so (a dataset loading, a script running, a full client table).
        heardReplies.get(redis) ?? unusableReply(parsed),
      ]);
      const final = heardRefusals.get(redis) ?? finalError(err) ?? probed ?? tlsOnly;
      if (final) {
        hardDisconnect(redis);
        throw final;
      }
      // Until the first answer, a refusal that comes later is as final as one within the wait:
      // refusedBeforeReady gives it to whoever waits on the connection.
      // No answer yet (a paused or overloaded server accepts the connection and says nothing, so no error
      // event is logged; a loading one answers only LOADING): say why this daemon is waiting instead of starting
      // silently, in Redis's words where it gave them.
      const why = unusable ? ` (${unusableRedisReason(unusable)}: ${unusable.message})` : '';
      logger?.warn(
        { waited_ms: config.connectTimeoutMs },
        `Redis at ${redisLocation(config)} does not answer yet${why}: waiting for it (daemons retry until it does)`,
      );
    } finally {
      onAuthFailure = undefined;
    }
  }
  return redis;
}

/** The first refusal (credentials, rights, TLS) each connection heard, whenever it came; each is emitted as REFUSED. */
const heardRefusals = new WeakMap<RedisClient, JtmError>();
/** The first error reply each connection heard that says why Redis cannot serve now (unusableRedisReason). */
const heardReplies = new WeakMap<RedisClient, Error>();
const REFUSED = 'jtm:refused';

/** Redis refusing JTM (credentials, rights) or its TLS failing for good, as the error to report; else undefined. */
function refusalOf(err: unknown, where: string, tls: boolean): JtmError | undefined {
  if (isAuthError(err)) return new RedisAuthError(where, err);
  if (tls && isTlsError(err))
    return new RedisTlsError(`TLS with Redis at ${where} failed: ${tlsAdvice(err)}`, err);
  return undefined;
}

/**
 * The error to report for a command that failed on `redis` (undefined: a connection no longer at hand, a
 * follower's) with a connection error: Redis's refusal if the connection heard one (with TLS, listening a moment for it: a server's alert can follow the reset that failed
 * the command, and "cannot reach Redis (Connection is closed.)" named no cause), else Redis unreachable.
 */
export async function connectionFailure(
  redis: RedisClient | undefined,
  config: Config,
  err: unknown,
): Promise<JtmError> {
  const heard = redis && heardRefusals.get(redis);
  if (heard) return heard;
  const parsed = parseRedisUrl(config.redisUrl ?? DEFAULT_URL, config);
  const where = redisLocation(config);
  const [refusal, reply] = await Promise.all([
    wasReset(err) ? tlsRefusal(parsed, e => refusalOf(e, where, true)) : undefined,
    (redis && heardReplies.get(redis)) ?? (wasReset(err) ? unusableReply(parsed) : undefined),
  ]);
  return refusal ?? new RedisUnavailableError(where, reply ?? err);
}

/**
 * Whether the server sent anything on the connection: a client whose connection timed out after Redis answered
 * (ioredis's ready check hears a load in progress and waits in silence) is worth asking why; a server that said
 * nothing (stopped, a hung host) is not asked, which would only make the command wait longer.
 */
function hasAnswered(redis: RedisClient): boolean {
  if (redis instanceof Cluster) return false;
  return ((redis as Redis & { stream?: { bytesRead?: number } }).stream?.bytesRead ?? 0) > 0;
}

/**
 * A daemon's connection that has not answered yet: rejects with Redis's refusal (credentials, rights, TLS) if
 * one comes before the first answer; otherwise never settles. A TLS server that wants a client certificate says
 * so only after a reset or two, past a daemon's first wait (a worker waited for ever, logging the alert once a
 * minute). Race it with what waits for the connection's first commands, which would wait for ever.
 */
export function refusedBeforeReady(redis: RedisClient): Promise<never> {
  const refused = new Promise<never>((_, reject) => {
    if (redis.status === 'ready') return;
    const heard = heardRefusals.get(redis);
    if (heard) {
      reject(heard);
      return;
    }
    const onRefused = (err: JtmError): void => {
      redis.off('ready', onReady);
      reject(err);
    };
    const onReady = (): void => void redis.off(REFUSED, onRefused);
    redis.once(REFUSED, onRefused);
    redis.once('ready', onReady);
  });
  refused.catch(() => {});
  return refused;
}

/**
 * ioredis sends SELECT on connect but ignores its failure and goes on with database 0: a database the server
 * does not have (`/99` with `databases 16`) would silently be another one. SELECT it again, and fail clearly.
 */
async function checkDatabase(redis: RedisClient, parsed: ParsedUrl): Promise<void> {
  const db = parsed.options.db;
  if (db === undefined || db === 0 || redis instanceof Cluster) return;
  try {
    await redis.select(db);
  } catch (err) {
    if (/DB index is out of range|invalid DB index/i.test((err as Error).message)) {
      throw new RedisUrlError(maskUrl(parsed.url), `the server has no database ${db}`);
    }
    throw err;
  }
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

/**
 * Drops a connection at once. ioredis' disconnect() only half-closes the socket (end()), which a server that
 * accepted the connection but does not answer (SIGSTOPped, swapping) never completes: the open socket then
 * kept a failed command alive for seconds after its error. Destroying it ends the process on time.
 */
export function hardDisconnect(redis: RedisClient): void {
  redis.disconnect();
  const nodes = redis instanceof Cluster ? redis.nodes() : [redis];
  for (const node of nodes) (node as Redis & { stream?: { destroy(): void } }).stream?.destroy();
}

/** Closes a connection, politely first, and never hangs on a dead server. */
export async function closeConnection(redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await withTimeout(redis.quit(), 1000);
  } catch {
    hardDisconnect(redis);
    return;
  }
  // Answered, but the socket must close too: Redis closes it after QUIT, a server that only looks like Redis
  // need not, and the command then never exited after printing its answer (adversary 24 F5).
  if ((redis.status as string) !== 'end') hardDisconnect(redis);
}
