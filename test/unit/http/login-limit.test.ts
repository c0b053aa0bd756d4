import { describe, expect, it } from 'vitest';

import { clientKey, LoginLimiter } from '../../../src/http/login-limit.js';
import { collecting } from '../../helpers/log-lines.js';

describe('wrong-credential limit (adversary 21 F2)', () => {
  it('keys a client by its IPv4 address, an IPv4-mapped address as IPv4, and IPv6 by its /64', () => {
    expect(clientKey('10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('2001:db8:aa:bb:1:2:3:4')).toBe('2001:db8:aa:bb::/64');
    expect(clientKey('2001:DB8:AA:BB::99')).toBe('2001:db8:aa:bb::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('64:ff9b::10.1.2.3')).toBe('64:ff9b:0:0::/64');
    expect(clientKey('')).toBe('');
  });

  it('one wrong answer in flight per client; other clients and other /64s are not held', () => {
    const limiter = new LoginLimiter(undefined, { delayMs: 60_000 });
    expect(limiter.refusal('10.0.0.1')).toBe(0);
    limiter.failed('10.0.0.1');
    expect(limiter.refusal('10.0.0.1')).toBeGreaterThan(59_000);
    expect(limiter.refusal('::ffff:10.0.0.1')).toBeGreaterThan(59_000);
    expect(limiter.refusal('10.0.0.2')).toBe(0);
    limiter.failed('2001:db8:0:1::5');
    expect(limiter.refusal('2001:db8:0:1::6')).toBeGreaterThan(59_000);
    expect(limiter.refusal('2001:db8:0:2::5')).toBe(0);
  });

  it('remembers at most maxClients, writing the counts of a client before forgetting it', () => {
    const { logger, lines } = collecting();
    const limiter = new LoginLimiter(logger, { delayMs: 60_000, maxClients: 3 });
    for (let i = 1; i <= 10; i++) {
      limiter.failed(`10.0.0.${i}`);
      limiter.failed(`10.0.0.${i}`);
      limiter.refusal(`10.0.0.${i}`);
    }
    expect(limiter.size).toBe(3);
    // Each client's first failure at once; the second and the refusal when it was evicted (clients 1-7).
    const got = lines().map(l => [l['client'], l['failures'], l['refused']]);
    expect(got.filter(([, f, r]) => f === 1 && r === 0)).toHaveLength(10);
    expect(got.filter(([, f, r]) => f === 1 && r === 1).map(([c]) => c)).toEqual(
      [1, 2, 3, 4, 5, 6, 7].map(i => `10.0.0.${i}`),
    );
  });

  it('sums the failures and refusals of a client since its last line, one line per window', async () => {
    const { logger, lines } = collecting();
    const limiter = new LoginLimiter(logger, { delayMs: 0, logEveryMs: 200 });
    for (let i = 0; i < 50; i++) limiter.failed('10.0.0.9');
    expect(lines().map(l => l['failures'])).toEqual([1]);
    await new Promise(r => setTimeout(r, 500));
    expect(lines().map(l => [l['msg'], l['client'], l['failures'], l['refused']])).toEqual([
      ['wrong user or password', '10.0.0.9', 1, 0],
      ['wrong user or password', '10.0.0.9', 49, 0],
    ]);
    // Idle for a window: forgotten, and the timer stops.
    await new Promise(r => setTimeout(r, 500));
    expect(limiter.size).toBe(0);
  });
});
