import { createRequire } from 'node:module';

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
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
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
