import { Writable } from 'node:stream';

import { pino } from 'pino';

/** A pino logger whose JSON lines are collected. */
export function collecting(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return {
    logger: pino({ level: 'info' }, stream),
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map(l => JSON.parse(l) as Record<string, unknown>),
  };
}
