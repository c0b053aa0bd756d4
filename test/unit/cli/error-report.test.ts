import { describe, expect, it } from 'vitest';

import { MAX_ERROR_CHARS, reportError } from '../../../src/cli/error-report.js';
import { InvalidInputError } from '../../../src/errors.js';

describe('a failed command’s exit code', () => {
  it('is 255 for Redis not reached, in the words of a Cluster client too (adversary 11 L4: exit 1, "dead")', () => {
    for (const message of [
      'Too many Cluster redirections. Last error: ReplyError: MOVED 12542 127.0.0.1:7988',
      'Too many Cluster redirections. Last error: Error: Connection is closed.',
      'Failed to refresh slots cache.',
      'None of startup nodes is available',
      'CLUSTERDOWN The cluster is down',
      'Command timed out',
    ]) {
      const r = reportError(new Error(message), 'pools', 'redis+cluster://a:1,b:2');
      expect([message, r.exitCode, r.json.error.code]).toEqual([message, 255, 'REDIS_UNAVAILABLE']);
      expect(r.line).toBe(`jtm pools: cannot reach Redis at redis+cluster://a:1,b:2 (${message})\n`);
    }
    expect(reportError(new Error('something else'), 'pools').exitCode).toBe(1);
    // Redis gone in the middle of a command (adversary 14 F10: exit 1, a line naming an ioredis option).
    const midway = Object.assign(
      new Error(
        'Reached the max retries per request limit (which is 1). Refer to "maxRetriesPerRequest" option for details.',
      ),
      { name: 'MaxRetriesPerRequestError' },
    );
    expect(reportError(midway, 'report', 'redis://127.0.0.1:7401')).toMatchObject({
      exitCode: 255,
      json: { error: { code: 'REDIS_UNAVAILABLE' } },
    });
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7003'), { port: 7003 });
    expect(reportError(refused, 'pools').exitCode).toBe(255);
    // Not Redis's: a file on NFS that timed out (review: every ETIMEDOUT read as Redis unreachable).
    expect(
      reportError(new Error("ETIMEDOUT: connection timed out, open '/nfs/x.html'"), 'report').exitCode,
    ).toBe(1);
  });
});

describe('a discarded transaction', () => {
  it('is named by the command Redis refused, not by EXEC’s EXECABORT (adversary 24 F8)', () => {
    const reply = (message: string): Error => Object.assign(new Error(message), { name: 'ReplyError' });
    const execAbort = (previous: Error): Error =>
      Object.assign(reply('EXECABORT Transaction discarded because of previous errors.'), {
        previousErrors: [previous],
      });
    const noperm = execAbort(reply("NOPERM this user has no permissions to run the 'pexpire' command"));
    expect(reportError(noperm, 'worker', 'redis://u:***@h:1')).toMatchObject({
      exitCode: 255,
      line: expect.stringMatching(
        /^jtm worker: Redis at redis:\/\/u:\*\*\*@h:1 refused JTM \(NOPERM .*'pexpire'/,
      ),
      json: { error: { code: 'REDIS_AUTH' } },
    });
    const oom = execAbort(reply("OOM command not allowed when used memory > 'maxmemory'."));
    expect(reportError(oom, 'kill')).toMatchObject({
      exitCode: 255,
      line: "jtm kill: Redis answered with an error: OOM command not allowed when used memory > 'maxmemory'.\n",
    });
  });
});

describe('a message that quotes a huge value', () => {
  it('is cut in the middle to a bounded line, its start and end kept (adversary 34 L1: a 5,000,039-byte line)', () => {
    const value = `${'x'.repeat(5_000_000)}😀`;
    const r = reportError(
      new InvalidInputError(`invalid cromwell_job_id ${JSON.stringify(value)}: use letters and digits`),
      'submit',
    );
    expect(r.line.length).toBeLessThan(MAX_ERROR_CHARS + 100);
    expect(r.line).toMatch(/^jtm submit: invalid cromwell_job_id "x{100}/);
    expect(r.line).toMatch(/… \(\d+ characters cut\) …x*😀": use letters and digits\n$/);
    expect(r.line).not.toContain('\uFFFD');
    expect(r.json.error.message.length).toBeLessThan(MAX_ERROR_CHARS + 100);
    // A short message is left as it is.
    expect(reportError(new InvalidInputError('bad -p'), 'submit').line).toBe('jtm submit: bad -p\n');
  });
});
