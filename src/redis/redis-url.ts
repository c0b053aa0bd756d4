/**
 * A Redis URL (redis://, rediss://, redis+cluster://, redis+sentinel://) parsed into what ioredis needs, and the
 * TLS files it names read and checked: every mistake in them is one clear line before any connection is tried.
 */
import { X509Certificate } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';

import type { RedisOptions } from 'ioredis';

import type { Config } from '../config.js';
import { RedisTlsError, RedisUrlError } from '../errors.js';
import { maskHostPart, maskUrl } from './location.js';

export interface ParsedUrl {
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
  const m = /^(rediss?)(?:\+(cluster|sentinel))?:\/\/(?:(.*)@)?([^/?#@]*)(?:\/([^?#]*))?/is.exec(raw);
  if (!m)
    throw new RedisUrlError(
      maskUrl(raw),
      'not a redis://, rediss://, redis+cluster:// or redis+sentinel:// URL',
    );
  const [, scheme = 'redis', mode, auth, hosts = '', path] = m;
  // Nothing where the host goes: a URL cut after its `@` (a template whose host variable was empty) was read as
  // host "user" and port "password", and said "options in the URL are not read" with the password in clear
  // (adversary 40 H1). `redis://:7400` (a port alone) still means this machine.
  if (hosts === '')
    throw new RedisUrlError(
      maskUrl(raw),
      `no host${auth === undefined ? '' : ' after the @'}: name the Redis server (e.g. redis://user:password@host:6379)`,
    );
  // A query or fragment (`?tls=true`, `?password=…`, `#…`) was ignored: a URL that asked for TLS connected in
  // clear. Nothing there is read, so nothing there is accepted.
  const rest = raw.slice(m[0].length);
  // A host part that can only be `user:password` (no `@host`) is said as such below, not as options: what
  // follows its `#` or `?` is more of the password.
  const passwordAsHost = auth === undefined && hosts.split(',').some(h => maskHostPart(h) !== h);
  if (rest !== '' && !passwordAsHost) {
    // Not shown, not even the names: a password with an unencoded `#` or `?` and no `@host` ends up there
    // (`redis://u:Pw7#Sekr` said "not read (Sekr)": adversary 42 H1), and `?pw:secret` is a name.
    throw new RedisUrlError(
      `${maskUrl(m[0])}${rest[0]}…`,
      `options in the URL (what follows its ${rest[0] === '#' ? '#' : '?'}) are not read: TLS is rediss://, its files JTM_REDIS_TLS_CA, _CERT and _KEY, the password user:password@ (encode @ : / # ? in it as %40 %3A %2F %23 %3F)`,
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
    // host, host:port, [IPv6] or [IPv6]:port. Anything else was cut at its colons: `[::1:8040` (a bracket
    // missing) was taken for host "[" and answered like an outage, `:7796:9` for port 7796 (adversary 35 F9).
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([\p{L}\p{N}._-]*))(?::([^:]*))?$/u.exec(h);
    if (!m)
      throw new RedisUrlError(
        maskUrl(raw),
        `${JSON.stringify(maskHostPart(h))} is not host, host:port or [IPv6 address]:port`,
      );
    const [, v6, name, port] = m;
    // An impossible port used to be retried until the connect timeout, then answered like an outage.
    if (port !== undefined && port !== '' && !(/^\d{1,5}$/.test(port) && +port >= 1 && +port <= 65535)) {
      throw new RedisUrlError(
        maskUrl(raw),
        /^[\d.:]*$/.test(port)
          ? `port ${JSON.stringify(port)} is not a port (1 to 65535)`
          : // Not quoted: it may be a password whose `@host` is missing (`redis://jtm:s3cr3tPW`).
            `the text after ${JSON.stringify(`${v6 === undefined ? (name ?? '') : `[${v6}]`}:`)} is not a port (1 to 65535)${auth === undefined ? '; if it is a password, the URL needs @host after it' : ''}`,
      );
    }
    return { host: v6 ?? (name || '127.0.0.1'), port: Number(port || 6379) };
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
