import { describe, expect, it } from 'vitest';

import { isCredentialsRefusal, isOutageRefusal, isTransientRefusal } from '../../../src/redis/replies.js';

/** An error as ioredis gives a server's error reply. */
function replyError(message: string): Error {
  const e = new Error(message);
  e.name = 'ReplyError';
  return e;
}

describe('a refusal worth writing again (the end of a run)', () => {
  it('is a Redis that cannot take writes for a while, a cluster down or changing included', () => {
    for (const e of [
      replyError('OOM command not allowed when used memory > maxmemory'),
      replyError('CLUSTERDOWN The cluster is down'),
      replyError('LOADING Redis is loading the dataset in memory'),
      // ioredis's Cluster client, a plain Error (adversary 11 L3: the give-back was not written again).
      new Error('Too many Cluster redirections. Last error: ReplyError: CLUSTERDOWN The cluster is down'),
      new Error('Too many Cluster redirections. Last error: ReplyError: MOVED 3415 127.0.0.1:7961'),
    ])
      expect([e.message, isTransientRefusal(e)]).toEqual([e.message, true]);
    // A transaction (the worker's beat) refused as a whole for one of them: its commands' errors say why
    // (adversary 24 F6: a beat refused for MISCONF read as an answer, and its fenced run was counted a lease loss).
    const aborted = (...previous: Error[]): Error =>
      Object.assign(replyError('EXECABORT Transaction discarded because of previous errors.'), {
        previousErrors: previous,
      });
    expect(isTransientRefusal(aborted(replyError('MISCONF Redis is configured to save RDB snapshots')))).toBe(
      true,
    );
    expect(isTransientRefusal(aborted(replyError('BUSY Redis is busy running a script')))).toBe(true);
    expect(isTransientRefusal(aborted(replyError('NOPERM no permissions')))).toBe(false);
    expect(isTransientRefusal(aborted())).toBe(false);
    // Redis's own wording when the MULTI itself was refused (a BUSY script).
    expect(
      isTransientRefusal(
        replyError('EXECABORT Transaction discarded because of: BUSY Redis is busy running a script.'),
      ),
    ).toBe(true);
    for (const e of [
      replyError('NOPERM this user has no permissions to run the evalsha command'),
      replyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
      new Error('OOM but not a reply'),
      'CLUSTERDOWN',
    ])
      expect(isTransientRefusal(e)).toBe(false);
  });
});

describe("a refusal of the worker's credentials (a password rotated under it: adversary 24 F2)", () => {
  it('is WRONGPASS or NOAUTH, alone or as the cause of a refused transaction; not NOPERM', () => {
    const wrongpass = replyError('WRONGPASS invalid username-password pair or user is disabled.');
    const noauth = replyError('NOAUTH Authentication required.');
    // ioredis fails a transaction queued while the reconnect's AUTH was refused with that refusal, the others in it.
    const queued = Object.assign(replyError(wrongpass.message), { previousErrors: [wrongpass, wrongpass] });
    const aborted = Object.assign(replyError('EXECABORT Transaction discarded because of previous errors.'), {
      previousErrors: [noauth],
    });
    for (const e of [wrongpass, noauth, queued, aborted])
      expect([e.message, isCredentialsRefusal(e), isOutageRefusal(e)]).toEqual([e.message, true, true]);
    for (const e of [
      replyError('NOPERM this user has no permissions to run the evalsha command'),
      new Error('WRONGPASS but not a reply'),
      'WRONGPASS',
    ])
      expect([String(e), isCredentialsRefusal(e), isOutageRefusal(e)]).toEqual([String(e), false, false]);
    // A Redis refusing writes for now is an outage too, not a credentials refusal.
    const busy = replyError('BUSY Redis is busy running a script');
    expect([isCredentialsRefusal(busy), isOutageRefusal(busy)]).toEqual([false, true]);
  });
});
