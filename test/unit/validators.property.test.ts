import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { LEGACY_FLAGS, normaliseArgv } from '../../src/cli/argv.js';
import { resolveTaskId } from '../../src/cli/task-id.js';
import { formatHms, parseDuration } from '../../src/durations.js';
import { InvalidInputError } from '../../src/errors.js';
import { maskUrl } from '../../src/redis/connection.js';
import { POOL_NAME, normaliseMemory, validatePoolName, validateTime } from '../../src/pool-spec.js';
import { parseTaskFile } from '../../src/tasks/task-file.js';
import { buildTask, TASK_FIELDS } from '../../src/tasks/task-spec.js';

/** Runs `f`; an InvalidInputError is the only acceptable failure (never a TypeError or a crash). */
function invalidOr<T>(f: () => T): T | InvalidInputError {
  try {
    return f();
  } catch (err) {
    if (err instanceof InvalidInputError) return err;
    throw err;
  }
}

const defaults = { cwd: '/tmp', maxCommandBytes: 65536, pool: 'p' };

describe('durations', () => {
  it('hh:mm:ss and d-hh:mm:ss round-trip through formatHms', () => {
    fc.assert(
      fc.property(fc.nat(999), fc.nat(59), fc.nat(59), (h, m, s) => {
        const text = `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
        const msValue = parseDuration(text);
        expect(msValue).toBe(((h * 60 + m) * 60 + s) * 1000);
        expect(parseDuration(formatHms(msValue))).toBe(msValue);
      }),
    );
    fc.assert(
      fc.property(fc.nat(30), fc.nat(23), fc.nat(59), fc.nat(59), (d, h, m, s) => {
        expect(parseDuration(`${d}-${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`)).toBe(
          (((d * 24 + h) * 60 + m) * 60 + s) * 1000,
        );
      }),
    );
  });

  it('unit strings scale as expected', () => {
    const unit = fc.constantFrom(['ms', 1], ['s', 1000], ['m', 60_000], ['h', 3_600_000], ['d', 86_400_000]);
    fc.assert(
      fc.property(fc.nat(100_000), unit, (n, [u, f]) => {
        expect(parseDuration(`${n}${u as string}`)).toBe(n * (f as number));
      }),
    );
  });

  it('any string either parses to a finite non-negative number or throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), s => {
        let v: number | undefined;
        try {
          v = parseDuration(s);
        } catch {
          return;
        }
        expect(Number.isFinite(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('minutes or seconds of 60 and above are rejected', () => {
    fc.assert(
      fc.property(fc.nat(99), fc.integer({ min: 60, max: 99 }), (h, bad) => {
        expect(() => parseDuration(`${h}:${bad}:00`)).toThrow();
        expect(() => parseDuration(`${h}:00:${bad}`)).toThrow();
        expect(invalidOr(() => validateTime(`${h}:${bad}:00`))).toBeInstanceOf(InvalidInputError);
      }),
    );
  });
});

describe('pool names', () => {
  it('a name is accepted exactly when it matches the documented pattern, and then is key- and shell-safe', () => {
    const arb = fc.oneof(
      fc.string({ maxLength: 140 }),
      fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/),
      fc.string({
        unit: fc.constantFrom('a', 'Z', '9', '_', '.', '-', ':', '{', '}', '*', ' ', ';', '$', '\n', '`'),
        maxLength: 20,
      }),
    );
    fc.assert(
      fc.property(arb, name => {
        const r = invalidOr(() => validatePoolName(name));
        expect(r instanceof InvalidInputError).toBe(!POOL_NAME.test(name));
        if (typeof r === 'string') {
          expect(r).toBe(name);
          expect(r).not.toMatch(/[:{}*?\s;$`'"\\/]/);
          expect(r.length).toBeLessThanOrEqual(128);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('non-strings are rejected', () => {
    fc.assert(
      fc.property(
        fc.anything().filter(v => typeof v !== 'string'),
        v => {
          expect(invalidOr(() => validatePoolName(v))).toBeInstanceOf(InvalidInputError);
        },
      ),
    );
  });
});

describe('memory strings', () => {
  it('a positive number of GB becomes whole gigabytes, or megabytes never below it', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.001, max: 1e6, noNaN: true }), gb => {
        const r = normaliseMemory(gb) as string;
        expect(r).toMatch(/^\d+[GM]$/);
        const mb = Number(r.slice(0, -1)) * (r.endsWith('G') ? 1024 : 1);
        expect(mb).toBeGreaterThanOrEqual(gb * 1024);
        expect(mb - gb * 1024).toBeLessThan(1);
      }),
    );
  });

  it('anything else is a Slurm size or an InvalidInputError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 12 }), fc.anything()), v => {
        const r = invalidOr(() => normaliseMemory(v));
        if (typeof r === 'string') expect(r).toMatch(/^\d+(\.\d+)?[KMGT]$/);
        else if (r !== undefined) expect(r).toBeInstanceOf(InvalidInputError);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('task validation', () => {
  it('any JSON value as a task gives a valid task or one InvalidInputError', () => {
    // Every known field, and one unknown that must be refused.
    const field = fc.constantFrom(...TASK_FIELDS, 'colour');
    const task = fc.oneof(
      fc.jsonValue(),
      fc.dictionary(
        field,
        fc.oneof(fc.jsonValue(), fc.string(), fc.constant('ls'), fc.record({ name: fc.string() })),
      ),
    );
    fc.assert(
      fc.property(task, input => {
        const r = invalidOr(() => buildTask(input as never, defaults));
        if (r instanceof InvalidInputError) {
          expect(r.message).not.toContain('\n');
          return;
        }
        expect(r.command.trim()).not.toBe('');
        expect(r.command).not.toContain('\0');
        expect(r.pool).toMatch(POOL_NAME);
        if (r.timeoutMs !== undefined) expect(r.timeoutMs).toBeGreaterThan(0);
      }),
      { numRuns: 3000 },
    );
  });

  it('any text as a task file gives task inputs or one InvalidInputError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.array(fc.json()).map(a => a.join('\n')),
        ),
        text => {
          const r = invalidOr(() => parseTaskFile(text, 'f.json'));
          if (!(r instanceof InvalidInputError)) expect(Array.isArray(r) && r.length > 0).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('command line', () => {
  it('task ids: positive safe integers pass, anything else is an InvalidInputError', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), n => {
        expect(resolveTaskId(String(n), undefined)).toBe(n);
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 25 }), s => {
        const r = invalidOr(() => resolveTaskId(s, undefined));
        if (typeof r === 'number') {
          expect(Number.isSafeInteger(r) && r >= 1).toBe(true);
          expect(s.trim()).toMatch(/^\d+$/);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a legacy flag takes its value verbatim, even one starting with a dash', () => {
    const valued = Object.entries(LEGACY_FLAGS).filter(([, a]) => a.value);
    fc.assert(
      fc.property(fc.constantFrom(...valued), fc.string(), ([legacy, alias], value) => {
        expect(normaliseArgv('jtm', ['submit', legacy, value])).toEqual([
          'submit',
          `--${alias.flag}=${value}`,
        ]);
      }),
    );
  });

  it('keeps the command first, moves global flags after it and never touches what follows --', () => {
    const token = fc.oneof(fc.string(), fc.constantFrom('-tid', '-cmd', '-p', '--', '-dr'));
    fc.assert(
      fc.property(
        fc.array(token, { maxLength: 8 }),
        fc.array(fc.string(), { maxLength: 4 }),
        (rest, after) => {
          // `x` ends the flags: a valued legacy flag right before `--` would take `--` as its value.
          const out = normaliseArgv('jtm', ['--debug', 'status', ...rest, 'x', '--', ...after]);
          expect(out[0]).toBe('status');
          expect(out.at(-1)).toBe('--debug');
          expect(out.slice(out.length - 2 - after.length)).toEqual(['--', ...after, '--debug']);
        },
      ),
    );
  });

  it('masks any password in a Redis URL', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9!$%^&*()_+=~-]{1,20}$/);
    fc.assert(
      fc.property(
        fc.constantFrom('redis', 'rediss', 'redis+cluster', 'redis+sentinel'),
        fc.stringMatching(/^[a-z]{0,8}$/),
        secret,
        (scheme, user, pw) => {
          const masked = maskUrl(`${scheme}://${user}:${pw}@127.0.0.1:6379,127.0.0.2:6380/0`);
          expect(masked).toBe(`${scheme}://${user ? `${user}:` : ''}***@127.0.0.1:6379,127.0.0.2:6380/0`);
        },
      ),
    );
  });
});
