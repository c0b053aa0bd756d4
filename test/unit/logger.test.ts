import { Writable } from 'node:stream';

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

import { captureStrayOutput, rateLimited } from '../../src/logger.js';

/** A pino logger whose JSON lines are collected. */
function collecting(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  const logger = pino({ level: 'info' }, stream);
  return {
    logger,
    lines: () =>
      text
        .trim()
        .split('\n')
        .filter(Boolean)
        .map(l => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('stray output goes through the logger (issue 12 item 10)', () => {
  it('console.error of a multi-line error and ioredis [WARN] lines become single JSON lines, rate-limited', () => {
    const { logger, lines } = collecting();
    const restore = captureStrayOutput(logger);
    try {
      for (let i = 0; i < 20; i++) console.error(new Error(`connect ECONNREFUSED 127.0.0.1:${6000 + i}`));
      console.warn('[WARN] Redis server does not require a password, but a password was supplied.');
    } finally {
      restore();
    }
    const got = lines();
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({
      level: 50,
      source: 'console',
      msg: 'connect ECONNREFUSED 127.0.0.1:6000',
    });
    expect(String(got[0]?.['stack'])).toContain('\n'); // the stack is a field, not lines of stderr
    expect(got[1]).toMatchObject({ level: 40, msg: expect.stringContaining('[WARN] Redis server') });
  });

  it("Node's process warnings are logged instead of printed", async () => {
    const { logger, lines } = collecting();
    const restore = captureStrayOutput(logger);
    try {
      process.emitWarning('timer overflow', 'TimeoutOverflowWarning');
      await new Promise(r => setImmediate(r));
    } finally {
      restore();
    }
    expect(lines()).toEqual([
      expect.objectContaining({ level: 40, warning: 'TimeoutOverflowWarning', msg: 'timer overflow' }),
    ]);
  });

  it('a repeat after the window carries the count of those left out', async () => {
    const { logger, lines } = collecting();
    const limited = rateLimited(logger, 50);
    limited('warn', 'k', {}, 'a');
    limited('warn', 'k', {}, 'a');
    limited('warn', 'k', {}, 'a');
    await new Promise(r => setTimeout(r, 80));
    limited('warn', 'k', {}, 'b');
    expect(lines().map(l => [l['msg'], l['repeated']])).toEqual([
      ['a', undefined],
      ['b', 2],
    ]);
  });
});
