import { X509Certificate } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import {
  connect as tlsConnect,
  createSecureContext,
  type ConnectionOptions,
  type SecureContext,
} from 'node:tls';

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
  // The user and password run to the last `@` (a password may hold `/` or `@`: the first `/` was taken for the
  // path, and the password shown as a port).
  const m = /^(rediss?)(?:\+(cluster|sentinel))?:\/\/(?:(.*)@)?([^/?#@]+)(?:\/([^?#]*))?/is.exec(raw);
  if (!m)
    throw new RedisUrlError(
      maskUrl(raw),
      'not a redis://, rediss://, redis+cluster:// or redis+sentinel:// URL',
    );
  const [, scheme = 'redis', mode, auth, hosts = '', path] = m;
  // A query or fragment (`?tls=true`, `?password=…`, `#…`) was ignored: a URL that asked for TLS connected in
  // clear. Nothing there is read, so nothing there is accepted.
  const rest = raw.slice(m[0].length);
  if (rest !== '') {
    // Named, not shown: a value there may be a password.
    const names = rest
      .slice(1)
      .split('&')
      .map(kv => kv.split('=')[0])
      .join(', ');
    throw new RedisUrlError(
      `${maskUrl(m[0])}${rest[0]}…`,
      `options in the URL are not read (${names || 'empty'}): TLS is rediss://, its files JTM_REDIS_TLS_CA, _CERT and _KEY, the password user:password@`,
    );
  }
  const options: RedisOptions = {};
  if (auth) {
    const i = auth.indexOf(':');
    const user = decodeUserinfo(i >= 0 ? auth.slice(0, i) : '');
    const password = decodeUserinfo(i >= 0 ? auth.slice(i + 1) : auth);
    if (user) options.username = user;
    if (password) options.password = password;
  }
  if (scheme.toLowerCase() === 'rediss') {
    const tls = {
      ...(config.redisTlsCa ? { ca: tlsFile('JTM_REDIS_TLS_CA', config.redisTlsCa, 'certificate') } : {}),
      ...(config.redisTlsCert
        ? { cert: tlsFile('JTM_REDIS_TLS_CERT', config.redisTlsCert, 'certificate') }
        : {}),
      ...(config.redisTlsKey ? { key: tlsFile('JTM_REDIS_TLS_KEY', config.redisTlsKey, 'key') } : {}),
    };
    // The context the check made serves the connections too: the key is parsed once per process, not twice.
    const secureContext = checkClientCertificate(config, tls);
    options.tls = secureContext ? { ...tls, secureContext } : tls;
  } else {
    // Refused rather than ignored: whoever set a CA meant the connection to be encrypted, and a plain one would
    // send the password in clear (and isalive answered `yes` as if all were well).
    const set = (
      [
        ['JTM_REDIS_TLS_CA', config.redisTlsCa],
        ['JTM_REDIS_TLS_CERT', config.redisTlsCert],
        ['JTM_REDIS_TLS_KEY', config.redisTlsKey],
      ] as const
    ).filter(([, v]) => v !== undefined);
    if (set.length > 0) {
      throw new RedisTlsError(
        `${set.map(([k]) => k).join(', ')} set but REDIS_URL ${maskUrl(raw)} is not TLS: use rediss://, or unset ${set.length > 1 ? 'them' : 'it'}`,
      );
    }
  }
  const nodes = hosts.split(',').map(h => {
    const [host, port] = h.split(':');
    // An impossible port used to be retried until the connect timeout, then answered like an outage.
    if (port !== undefined && port !== '' && !(/^\d{1,5}$/.test(port) && +port >= 1 && +port <= 65535)) {
      throw new RedisUrlError(maskUrl(raw), `port ${JSON.stringify(port)} is not a port (1 to 65535)`);
    }
    return { host: host || '127.0.0.1', port: Number(port || 6379) };
  });
  if (mode === 'cluster') return { kind: 'cluster', url: raw, nodes, options };
  if (mode === 'sentinel')
    return { kind: 'sentinel', url: raw, nodes, options, sentinelName: path || 'mymaster' };
  // `/99`, `/abc` or `/-1` used to mean db 0 silently: a database that is not a number is refused here, one
  // the server does not have when SELECT fails (connectionError).
  if (path !== undefined && path !== '') {
    if (!/^\d{1,9}$/.test(path)) {
      throw new RedisUrlError(maskUrl(raw), `database ${JSON.stringify(path)} is not a number (e.g. /0)`);
    }
    options.db = Number(path);
  }
  return { kind: 'single', url: raw, nodes, options };
}

/** Largest PEM file: a chain of a few certificates is a few KB. */
const MAX_PEM_BYTES = 1024 * 1024;

/**
 * A PEM file's bytes: a regular file of a plausible size, opened without waiting. /dev/zero as a TLS file was
 * read until memory ran out (2–3 GB in seconds), and a FIFO hung every command, isalive included.
 */
function readPemFile(path: string): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
    if (!st.isFile()) throw new RedisTlsError('is not a regular file (a PEM file is needed)');
    if (st.size > MAX_PEM_BYTES)
      throw new RedisTlsError(`is larger than ${MAX_PEM_BYTES} bytes: not a PEM file`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A percent-encoded user name or password; one that is not valid percent-encoding is taken as written. */
function decodeUserinfo(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // `50%off`: a literal `%` the user did not encode (decodeURIComponent threw URIError, which reached the user
    // as a stack trace).
    return text;
  }
}

/**
 * A TLS file's content, or a RedisTlsError naming the setting and the path: Node reported a directory as
 * "EISDIR: illegal operation on a directory, read" with neither, and silently accepted a CA that is not a
 * certificate (every connection then failed verification, answered like an outage).
 */
function tlsFile(key: string, path: string, kind: 'certificate' | 'key'): Buffer {
  let data: Buffer;
  try {
    data = readPemFile(path);
  } catch (err) {
    if (err instanceof RedisTlsError) throw new RedisTlsError(`${key}=${path} ${err.message}`);
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EISDIR'
        ? 'is a directory, not a PEM file'
        : code === 'ENOENT'
          ? 'does not exist'
          : `cannot be read (${code ?? (err as Error).message})`;
    throw new RedisTlsError(`${key}=${path} ${why}`);
  }
  if (kind === 'certificate') {
    const pem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(data.toString('latin1'));
    try {
      if (!pem) throw new Error('no BEGIN CERTIFICATE block');
      new X509Certificate(pem[0]);
    } catch (err) {
      throw new RedisTlsError(`${key}=${path} is not a PEM certificate`, err);
    }
  }
  return data;
}

/**
 * A client certificate and its key, checked here where both are local files: a key that is not the
 * certificate's, empty, or protected by a passphrase used to surface only in the handshake, as "Connection is
 * closed." or an unreachable Redis (isalive answered `unknown` for ever after a key rotation gone wrong).
 */
function checkClientCertificate(
  config: Config,
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer },
): SecureContext | undefined {
  const cert = config.redisTlsCert;
  const key = config.redisTlsKey;
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    const [given, missing] = cert === undefined ? ['KEY', 'CERT'] : ['CERT', 'KEY'];
    throw new RedisTlsError(
      `JTM_REDIS_TLS_${given} is set without JTM_REDIS_TLS_${missing}: a client certificate needs both, the certificate and its key`,
    );
  }
  try {
    return createSecureContext(tls);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const why = /KEY_VALUES_MISMATCH/.test(code)
      ? `is not the key of JTM_REDIS_TLS_CERT=${cert}`
      : /BAD_DECRYPT|PASSPHRASE|INTERRUPTED/i.test(`${code} ${(err as Error).message}`)
        ? 'is protected by a passphrase: JTM needs it without one (readable by this user only)'
        : 'is not a usable PEM private key';
    throw new RedisTlsError(`JTM_REDIS_TLS_KEY=${key} ${why}`, err);
  }
}

/**
 * After a TLS connection got no answer: whether the server answers plain Redis (a `rediss://` URL on a plain
 * port, whose server waits for the rest of what it takes for a command while the client waits for a TLS
 * answer, until the timeout). One PING on a plain socket, bounded; any doubt is "no" (then an outage).
 */
async function speaksPlainRedis(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return /^[+-]/.test((await firstReplyLine(host, port, ['PING'], timeoutMs)) ?? '');
}

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
  redis.on('error', (err: Error) => {
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
  });
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
        heardRefusals.get(redis) ?? finalError(err) ?? probeRefusal(parsed, where, err, finalError),
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
      const [probed, unusable] = await Promise.all([
        plainServerError(parsed, where),
        // Why it cannot serve yet, when it says so (a dataset loading, a script running, a full client table).
        heardReplies.get(redis) ?? unusableReply(parsed),
      ]);
      const final = heardRefusals.get(redis) ?? finalError(err) ?? probed;
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

/**
 * What to check after a failed TLS handshake. A server's alert names the side at fault: with TLS 1.3 a server
 * that wants a client certificate, or refuses the one given, says so by an alert after the client's part of the
 * handshake ("blamed the CA" before, which was fine).
 */
function tlsAdvice(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/alert certificate required/i.test(msg)) {
    return 'the server requires a client certificate: set JTM_REDIS_TLS_CERT and JTM_REDIS_TLS_KEY';
  }
  const alert =
    /alert (certificate expired|bad certificate|unknown ca|certificate unknown|certificate revoked|unsupported certificate|access denied)/i.exec(
      msg,
    );
  if (alert) {
    return `the server refused JTM's client certificate (${alert[1]}): check JTM_REDIS_TLS_CERT and JTM_REDIS_TLS_KEY`;
  }
  return "check JTM_REDIS_TLS_CA (the CA that signed the server's certificate) and the host name in the URL";
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
 * After a plain single Redis's connection failed: its answer to one PING (after AUTH if the URL has
 * credentials) on a socket of its own, as the error to name when it says why Redis cannot serve now
 * (unusableRedisReason), else undefined. A full client table is said at accept, before ioredis has a command
 * to give the reply to (it reported EPIPE or "Connection is closed."), and a dataset loading is heard by
 * ioredis's ready check, which waits without a word until the timeout (adversary 24 F8).
 */
async function unusableReply(parsed: ParsedUrl, timeoutMs = 500): Promise<Error | undefined> {
  const node = parsed.nodes[0];
  if (parsed.kind !== 'single' || parsed.options.tls || !node) return undefined;
  const { username, password } = parsed.options;
  const auth = password === undefined ? [] : [['AUTH', ...(username ? [username] : []), password]];
  const lines = await replyLines(node.host, node.port, [...auth, ['PING']], timeoutMs);
  for (const line of lines ?? []) {
    const err = Object.assign(new Error(line.slice(1)), { name: 'ReplyError' });
    if (line.startsWith('-') && unusableRedisReason(err)) return err;
  }
  return undefined;
}

/** A connection reset or closed by the other side (not a timeout): where a TLS server's alert may be behind it. */
function wasReset(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /Connection is closed|ECONNRESET|EPIPE|socket hang up/i.test(msg);
}

/**
 * Why a client connection failed, when the server can say: its TLS alert (only after a reset: a timeout is
 * no refusal) or that it speaks plain Redis on a TLS URL. Both probes at once: each may take up to 1 s, and a
 * command must end within JTM_CONNECT_TIMEOUT + 1 s.
 */
async function probeRefusal(
  parsed: ParsedUrl,
  where: string,
  err: unknown,
  toFinal: (err: unknown) => JtmError | undefined,
): Promise<JtmError | undefined> {
  const [tls, plain, topology] = await Promise.all([
    wasReset(err) ? tlsRefusal(parsed, toFinal) : undefined,
    plainServerError(parsed, where),
    topologyError(parsed),
  ]);
  return tls ?? plain ?? topology;
}

/**
 * After a Sentinel or Cluster connection failed: whether the servers the URL names say it cannot work — a
 * Sentinel that knows no master of that name, a server that is no Sentinel, or no Cluster node. ioredis words
 * each as a timeout or "None of startup nodes is available", so JTM answered "cannot reach Redis", and isalive
 * `unknown` at every check for ever: a typo in Cromwell's check-alive kept every call alive (adversary 15 P12).
 * Only definite answers of every server named count: any server that knows the master, is a Cluster node, or
 * does not answer (it may be the one that knows the master) leaves it an outage. Plain connections only (a TLS Sentinel or Cluster is left to the outage message).
 */
async function topologyError(parsed: ParsedUrl): Promise<RedisUrlError | undefined> {
  if (parsed.kind === 'single' || parsed.options.tls || parsed.nodes.length === 0) return undefined;
  const name = parsed.sentinelName ?? '';
  const args =
    parsed.kind === 'sentinel' ? ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name] : ['CLUSTER', 'INFO'];
  const replies = await Promise.all(parsed.nodes.map(n => firstReplyLine(n.host, n.port, args)));
  const at = (i: number): string => `${parsed.nodes[i]?.host}:${parsed.nodes[i]?.port}`;
  const noMaster: string[] = [];
  const plainRedis: string[] = [];
  for (const [i, reply] of replies.entries()) {
    // A node that did not answer may be the one that knows the master (stopped, slow): an outage, then.
    if (reply === undefined) return undefined;
    if (parsed.kind === 'sentinel' && (reply === '*-1' || reply === '_')) noMaster.push(at(i));
    else if (parsed.kind === 'sentinel' && /^-ERR unknown command/i.test(reply)) plainRedis.push(at(i));
    else if (parsed.kind === 'cluster' && /^-ERR.*cluster support disabled/i.test(reply))
      plainRedis.push(at(i));
    else return undefined; // a Sentinel that knows the master, a Cluster node, or an answer not understood
  }
  const url = maskUrl(parsed.url);
  if (noMaster.length > 0)
    return new RedisUrlError(url, `the Sentinel at ${noMaster.join(', ')} knows no master named "${name}"`);
  if (plainRedis.length === 0) return undefined;
  return new RedisUrlError(
    url,
    parsed.kind === 'sentinel'
      ? `${plainRedis.join(', ')} is not a Sentinel (it answers as a Redis server)`
      : `${plainRedis.join(', ')} is not a Redis Cluster node (cluster support disabled: redis://${plainRedis[0]} names it)`,
  );
}

/**
 * The first line of a server's reply to one command on a plain socket (`*-1`, `-ERR …`, `$123`), or undefined
 * when it does not answer within `timeoutMs`.
 */
async function firstReplyLine(
  host: string,
  port: number,
  args: readonly string[],
  timeoutMs = 1000,
): Promise<string | undefined> {
  return (await replyLines(host, port, [args], timeoutMs))?.[0];
}

/**
 * The first lines a server sends for `commands` on a plain socket, one per command (for one-line replies),
 * as many as came before it closed or `timeoutMs` passed; undefined if none came.
 */
function replyLines(
  host: string,
  port: number,
  commands: readonly (readonly string[])[],
  timeoutMs: number,
): Promise<string[] | undefined> {
  return new Promise(resolve => {
    const socket = netConnect({ host, port });
    let text = '';
    const lines: string[] = [];
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(lines.length > 0 ? lines : undefined);
    };
    const timer = setTimeout(done, timeoutMs);
    socket.once('connect', () =>
      socket.write(
        commands
          .map(args => `*${args.length}\r\n${args.map(a => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`)
          .join(''),
      ),
    );
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      for (
        let end = text.indexOf('\r\n');
        end >= 0 && lines.length < commands.length;
        end = text.indexOf('\r\n')
      ) {
        lines.push(text.slice(0, end));
        text = text.slice(end + 2);
      }
      if (lines.length >= commands.length || text.length > 4096) done();
    });
    socket.on('error', done);
    socket.once('close', done);
  });
}

/**
 * After a TLS connection failed with a reset or a close: whether the server refuses this client. With TLS 1.3
 * a server that wants a client certificate (or refuses the one given) sends its alert after the client's part
 * of the handshake, and a client that has written a command by then often sees only the reset ("Connection is
 * closed.", 1 time in 5 here). One handshake that writes nothing and listens briefly hears the alert itself.
 */
async function tlsRefusal(
  parsed: ParsedUrl,
  toFinal: (err: unknown) => JtmError | undefined,
  timeoutMs = 1000,
): Promise<JtmError | undefined> {
  const node = parsed.nodes[0];
  if (!parsed.options.tls || parsed.kind === 'sentinel' || !node) return undefined;
  const tls = parsed.options.tls as ConnectionOptions;
  return new Promise(resolve => {
    const socket = tlsConnect({ ...tls, host: node.host, port: node.port });
    const done = (v: JtmError | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', err => done(toFinal(err)));
    socket.once('close', () => done(undefined));
  });
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

/** A TLS URL whose server answers plain Redis: the error that says so, else undefined (a plain outage). */
async function plainServerError(parsed: ParsedUrl, where: string): Promise<RedisTlsError | undefined> {
  const node = parsed.nodes[0];
  if (!parsed.options.tls || parsed.kind === 'sentinel' || !node) return undefined;
  if (!(await speaksPlainRedis(node.host, node.port))) return undefined;
  return new RedisTlsError(
    `Redis at ${where} answers without TLS: use redis:// for it (rediss:// is for a TLS port)`,
  );
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
