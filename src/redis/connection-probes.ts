/**
 * Why a connection to Redis failed, asked of the server itself on sockets of their own, each probe bounded in
 * time: its TLS alert, that it speaks plain Redis on a TLS URL (or only TLS on a plain one), that it is (or is
 * not) a Cluster node, or its error reply to a PING (a full client table, a dataset loading). Used after a
 * failure only: a command that succeeds never waits for them.
 */
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

import { type JtmError, RedisTlsError, RedisUrlError, unusableRedisReason } from '../errors.js';
import { maskUrl } from './location.js';
import type { ParsedUrl } from './redis-url.js';

/**
 * After a TLS connection got no answer: whether the server answers plain Redis (a `rediss://` URL on a plain
 * port, whose server waits for the rest of what it takes for a command while the client waits for a TLS
 * answer, until the timeout). One PING on a plain socket, bounded; any doubt is "no" (then an outage).
 */
async function speaksPlainRedis(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return /^[+-]/.test((await firstReplyLine(host, port, ['PING'], timeoutMs)) ?? '');
}

/**
 * What to check after a failed TLS handshake. A server's alert names the side at fault: with TLS 1.3 a server
 * that wants a client certificate, or refuses the one given, says so by an alert after the client's part of the
 * handshake ("blamed the CA" before, which was fine).
 */
export function tlsAdvice(err: unknown): string {
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

/**
 * After a plain single Redis's connection failed: its answer to one PING (after AUTH if the URL has
 * credentials) on a socket of its own, as the error to name when it says why Redis cannot serve now
 * (unusableRedisReason), else undefined. A full client table is said at accept, before ioredis has a command
 * to give the reply to (it reported EPIPE or "Connection is closed."), and a dataset loading is heard by
 * ioredis's ready check, which waits without a word until the timeout (adversary 24 F8).
 */
export async function unusableReply(parsed: ParsedUrl, timeoutMs = 500): Promise<Error | undefined> {
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
export function wasReset(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /Connection is closed|ECONNRESET|EPIPE|socket hang up/i.test(msg);
}

/**
 * Why a client connection failed, when the server can say: its TLS alert (only after a reset: a timeout is
 * no refusal), that it speaks plain Redis on a TLS URL, or only TLS on a plain one (only after a reset with
 * not a byte from the server, `answered` false: a plain Redis never answers the probe's handshake, which then
 * waits its whole second). All probes at once: each may take up to 1 s, and a command must end within
 * JTM_CONNECT_TIMEOUT + 1 s.
 */
export async function probeRefusal(
  parsed: ParsedUrl,
  where: string,
  err: unknown,
  toFinal: (err: unknown) => JtmError | undefined,
  answered = false,
): Promise<JtmError | undefined> {
  const [tls, plain, tlsOnly, topology] = await Promise.all([
    wasReset(err) ? tlsRefusal(parsed, toFinal) : undefined,
    plainServerError(parsed, where),
    wasReset(err) && !answered ? tlsServerError(parsed, where) : undefined,
    topologyError(parsed),
  ]);
  return tls ?? plain ?? tlsOnly ?? topology;
}

/**
 * A plain URL whose server speaks only TLS: the error that says so, else undefined (a plain outage). Such a
 * server closes the connection at the first bytes that are no TLS handshake, without a word: the client heard
 * "Connection is closed." at every try, and isalive answered `unknown` for ever (adversary 40 M3). One
 * handshake that checks nothing and writes nothing tells a TLS server (it answers a ClientHello) from a plain
 * one (Node reads its reply as "wrong version number"). Single Redis and a Cluster's first seed node only.
 */
export async function tlsServerError(
  parsed: ParsedUrl,
  where: string,
  timeoutMs = 1000,
): Promise<RedisTlsError | undefined> {
  const node = parsed.nodes[0];
  if (parsed.options.tls || parsed.kind === 'sentinel' || !node) return undefined;
  const speaksTls = await new Promise<boolean>(resolve => {
    // Nothing is verified and nothing is sent past the handshake: only whether the server answers it.
    const socket = tlsConnect({ host: node.host, port: node.port, rejectUnauthorized: false });
    const done = (v: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    // An alert is TLS too (a server that wants a client certificate, with TLS 1.2).
    socket.on('error', err => done(/alert/i.test(err.message)));
    socket.once('close', () => done(false));
  });
  if (!speaksTls) return undefined;
  return new RedisTlsError(
    `Redis at ${where} answers only TLS: use rediss:// for it (redis:// is for a plain port)`,
  );
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
export async function tlsRefusal(
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

/** A TLS URL whose server answers plain Redis: the error that says so, else undefined (a plain outage). */
export async function plainServerError(parsed: ParsedUrl, where: string): Promise<RedisTlsError | undefined> {
  const node = parsed.nodes[0];
  if (!parsed.options.tls || parsed.kind === 'sentinel' || !node) return undefined;
  if (!(await speaksPlainRedis(node.host, node.port))) return undefined;
  return new RedisTlsError(
    `Redis at ${where} answers without TLS: use redis:// for it (rediss:// is for a TLS port)`,
  );
}
