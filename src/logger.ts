import { pino, type Logger } from 'pino';

import type { LogLevel } from './config.js';

export type { Logger };

/**
 * pino on stderr (stdout carries only command results): JSON lines, or pino-pretty when stderr is a
 * terminal. Synchronous writes so that a CLI process that exits right away loses no line.
 */
export async function createLogger(level: LogLevel, bindings: Record<string, unknown> = {}): Promise<Logger> {
  const options = {
    level,
    base: { pid: process.pid, ...bindings },
    redact: {
      paths: ['password', '*.password', 'redisUrl', '*.redisUrl', '*.command.args', '*.*.command.args'],
      censor: '***',
    },
    serializers: { err: serializeError },
  };
  if (process.stderr.isTTY) {
    const { default: pretty } = await import('pino-pretty');
    return pino(options, pretty({ destination: 2, sync: true, ignore: 'pid,hostname' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/**
 * pino's error serializer without the arguments of the Redis command that failed: ioredis attaches them
 * to reply errors, and for AUTH (a wrong password, a disabled ACL user) they are the credentials.
 */
function serializeError(err: unknown): unknown {
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
  return pino({ level: 'silent' });
}
