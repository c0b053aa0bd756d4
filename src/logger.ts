import { createRequire } from 'node:module';
import { inspect } from 'node:util';

import type * as Pino from 'pino';
import type { Logger } from 'pino';
import type * as PinoPretty from 'pino-pretty';

import type { LogLevel } from './config.js';

export type { Logger };

const LEVEL_VALUES: Readonly<Record<string, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
};

// Loaded synchronously on first use: a log call cannot wait, and a CLI run that logs nothing
// (isalive, status at the default level) never pays for pino's modules (≈ 13 ms cold).
const requireCjs = createRequire(import.meta.url);

/**
 * pino on stderr (stdout carries only command results): JSON lines, or pino-pretty when stderr is a
 * terminal. Synchronous writes so that a CLI process that exits right away loses no line. pino itself
 * is only loaded once something is logged at `level` (or the logger is used otherwise, e.g. child()).
 */
export async function createLogger(level: LogLevel, bindings: Record<string, unknown> = {}): Promise<Logger> {
  return lazyLogger(level, () => {
    const { pino } = requireCjs('pino') as typeof Pino;
    const options = {
      level,
      base: { pid: process.pid, ...bindings },
      redact: {
        paths: ['password', '*.password', 'redisUrl', '*.redisUrl', '*.command.args', '*.*.command.args'],
        censor: '***',
      },
      serializers: { err: (err: unknown) => serializeError(pino, err) },
    };
    if (process.stderr.isTTY) {
      const pretty = (requireCjs('pino-pretty') as typeof PinoPretty).default;
      return pino(options, pretty({ destination: 2, sync: true, ignore: 'pid,hostname' }));
    }
    return pino(options, pino.destination({ fd: 2, sync: true }));
  });
}

/**
 * pino's error serializer without the arguments of the Redis command that failed: ioredis attaches them
 * to reply errors, and for AUTH (a wrong password, a disabled ACL user) they are the credentials.
 */
function serializeError(pino: (typeof Pino)['pino'], err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out = pino.stdSerializers.err(err) as Record<string, unknown>;
  scrubCommandArgs(out, 0);
  return out;
}

function scrubCommandArgs(value: unknown, depth: number): void {
  if (depth > 5 || typeof value !== 'object' || value === null) return;
  const obj = value as Record<string, unknown>;
  const command = obj['command'];
  if (typeof command === 'object' && command !== null && 'args' in command) {
    obj['command'] = { ...(command as Record<string, unknown>), args: '***' };
  }
  for (const v of Object.values(obj)) scrubCommandArgs(v, depth + 1);
}

/** A logger that drops everything (tests, library callers that pass none). */
export function silentLogger(): Logger {
  return lazyLogger('silent', () => (requireCjs('pino') as typeof Pino).pino({ level: 'silent' }));
}

/**
 * A stand-in for the pino logger `build` makes: level methods below `level` are no-ops until then;
 * anything else (a call at an enabled level, child(), bindings(), a level change) builds the real
 * logger once and is forwarded to it from then on.
 */
function lazyLogger(level: LogLevel, build: () => Logger): Logger {
  let real: Logger | undefined;
  const threshold = LEVEL_VALUES[level] ?? 0;
  const noop = (): void => {};
  const materialise = (): Logger => (real ??= build());
  // The target is never read: every access goes through the traps below.
  return new Proxy(Object.create(null) as Logger, {
    get(_target, prop) {
      if (!real && typeof prop === 'string') {
        const value = LEVEL_VALUES[prop];
        if (value !== undefined && value < threshold) return noop;
        if (prop === 'level') return level;
        // Not a thenable: `await createLogger()` looks `then` up, and building pino for it loaded pino in every
        // process (≈ 20 modules, tens of ms of a cold command's start) whatever it logged.
        if (prop === 'then') return undefined;
        if (prop === 'isLevelEnabled') return (l: string) => (LEVEL_VALUES[l] ?? 0) >= threshold;
      }
      const logger = materialise();
      const v: unknown = Reflect.get(logger, prop, logger);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(logger) : v;
    },
    set(_target, prop, value) {
      return Reflect.set(materialise(), prop, value);
    },
    has(_target, prop) {
      return Reflect.has(materialise(), prop);
    },
  });
}

type RepeatLevel = 'info' | 'warn' | 'error';

/** A log call whose repeats of one kind (`key`) within a window are only counted (rateLimited). */
export type RepeatLogger = (
  level: RepeatLevel,
  key: string,
  obj: Record<string, unknown>,
  msg: string,
) => void;

/**
 * A log call that does not flood: the first line of each kind (`key`) is logged, repeats within `windowMs`
 * are only counted, and the count goes with the next line of that kind logged after the window. For what
 * repeats on its own while something is down (Redis reconnect errors every few hundred ms).
 */
export function rateLimited(logger: Logger, windowMs = 60_000): RepeatLogger {
  const seen = new Map<string, { at: number; suppressed: number }>();
  return (level, key, obj, msg) => {
    const now = Date.now();
    const entry = seen.get(key);
    if (entry && now - entry.at < windowMs) {
      entry.suppressed++;
      return;
    }
    const repeated = entry?.suppressed ? { repeated: entry.suppressed } : {};
    seen.set(key, { at: now, suppressed: 0 });
    if (seen.size > 1000) seen.delete(seen.keys().next().value as string);
    logger[level]({ ...obj, ...repeated }, msg);
  };
}

/** The key under which a message counts as a repeat: its first line without numbers (ports, pids, counts). */
function repeatKey(text: string): string {
  return (text.split('\n')[0] ?? '').replace(/\d+/g, '#').slice(0, 200);
}

/**
 * Makes every line on stderr a pino JSON line: libraries that print by themselves (ioredis `[WARN]` lines and
 * "Unhandled error event" stacks, BullMQ's console.error of a queue error nobody listens to) and Node's
 * process warnings go through `logger` instead, one line each (the message is the first line; a stack goes
 * in `stack`), rate-limited when they repeat. JTM itself never writes to the console; stdout is untouched.
 * Returns a function that puts things back.
 */
export function captureStrayOutput(logger: Logger, windowMs = 60_000): () => void {
  const log = rateLimited(logger, windowMs);
  const original = { warn: console.warn, error: console.error };
  const route =
    (level: RepeatLevel, source: string) =>
    (...args: unknown[]): void => {
      const err = args.find((a): a is Error => a instanceof Error);
      const text = args
        .map(a => (a instanceof Error ? a.message : typeof a === 'string' ? a : inspect(a)))
        .join(' ');
      const msg = text.split('\n')[0] ?? '';
      log(
        level,
        `${source}:${repeatKey(text)}`,
        { source, ...(err?.stack ? { stack: err.stack } : {}) },
        msg,
      );
    };
  console.warn = route('warn', 'console');
  console.error = route('error', 'console');
  // Node prints warnings with its own listener unless one replaces it.
  const nodeListeners = process.listeners('warning');
  process.removeAllListeners('warning');
  const onWarning = (w: Error & { code?: string }): void =>
    log('warn', `warning:${w.name}:${repeatKey(w.message)}`, { warning: w.name, code: w.code }, w.message);
  process.on('warning', onWarning);
  return () => {
    console.warn = original.warn;
    console.error = original.error;
    process.off('warning', onWarning);
    for (const l of nodeListeners) process.on('warning', l);
  };
}
