import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { captureStrayOutput, rateLimited } from '../../src/logger.js';
import { collecting } from '../helpers/log-lines.js';

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
    // A window wide enough that a loaded machine stalling this process between the three calls stays within it.
    const limited = rateLimited(logger, 500);
    limited('warn', 'k', {}, 'a');
    limited('warn', 'k', {}, 'a');
    limited('warn', 'k', {}, 'a');
    await new Promise(r => setTimeout(r, 600));
    limited('warn', 'k', {}, 'b');
    expect(lines().map(l => [l['msg'], l['repeated']])).toEqual([
      ['a', undefined],
      ['b', 2],
    ]);
  });
});

describe('pino is loaded only once something is logged at the level', () => {
  // In a process of its own (this project's processes are reused from file to file, pino may be loaded
  // already), on the build: what a cold `jtm isalive`/`submit` or a Slurm worker pays at start.
  const loaded = (calls: string): string => {
    const script = `
      import { createRequire } from 'node:module';
      const { createLogger } = await import(${JSON.stringify(new URL('../../dist/src/logger.js', import.meta.url).href)});
      const log = await createLogger('warn', { cmd: 'x' });
      ${calls}
      const cache = createRequire(import.meta.url).cache;
      process.stdout.write(String(Object.keys(cache).some(k => k.includes('/pino/'))));`;
    return execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  };

  it('not by awaiting the logger (a lookup of `then`) nor by calls below the level', () => {
    expect(loaded("log.debug('d'); log.info('i');")).toBe('false');
  });

  it('by a call at the level', () => {
    expect(loaded("log.warn('w');")).toBe('true');
  });
});
