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
    redact: { paths: ['password', '*.password', 'redisUrl', '*.redisUrl'], censor: '***' },
  };
  if (process.stderr.isTTY) {
    const { default: pretty } = await import('pino-pretty');
    return pino(options, pretty({ destination: 2, sync: true, ignore: 'pid,hostname' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything (tests, library callers that pass none). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
