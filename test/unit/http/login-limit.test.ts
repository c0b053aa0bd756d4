import { describe, expect, it } from 'vitest';

import {
  clientKey,
  LOGIN_LINES_PER_WINDOW,
  LoginLimiter,
  LOOPBACK_CLIENT,
} from '../../../src/http/login-limit.js';
import { collecting } from '../../helpers/log-lines.js';
import { waitFor } from '../../helpers/env.js';

describe('wrong-credential limit (adversary 21 F2)', () => {
  it('keys a client by its IPv4 address, an IPv4-mapped address as IPv4, and IPv6 by its /64 (link-local by its address)', () => {
    expect(clientKey('10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(clientKey('2001:db8:aa:bb:1:2:3:4')).toBe('2001:db8:aa:bb::/64');
    expect(clientKey('2001:DB8:AA:BB::99')).toBe('2001:db8:aa:bb::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    // Link-local: every client of the link is in fe80::/64; by whole address (the zone dropped).
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0:0:0:0:1');
    expect(clientKey('FE80::A:2')).toBe('fe80:0:0:0:0:0:a:2');
    expect(clientKey('febf::1')).toBe('febf:0:0:0:0:0:0:1');
    expect(clientKey('fec0::1')).toBe('fec0:0:0:0::/64');
    expect(clientKey('::2')).toBe('0:0:0:0::/64');
    expect(clientKey('64:ff9b::10.1.2.3')).toBe('64:ff9b:0:0::/64');
    expect(clientKey('')).toBe('');
  });

  it('keys every loopback address as one client: 127.0.0.0/8, ::1, mapped or not (adversary 35 F3)', () => {
    for (const a of [
      '127.0.0.1',
      '127.0.0.2',
      '127.1.2.3',
      '127.255.255.254',
      '::ffff:127.0.0.1',
      '::FFFF:127.9.9.9',
      '::ffff:7f00:1',
      '::ffff:7fab:cdef',
      '::1',
      '0:0:0:0:0:0:0:1',
    ])
      expect(clientKey(a), a).toBe(LOOPBACK_CLIENT);
    for (const a of ['128.0.0.1', '126.255.255.255', '10.127.0.1', '::ffff:8000:1', '::2', '1::1'])
      expect(clientKey(a), a).not.toBe(LOOPBACK_CLIENT);
    const limiter = new LoginLimiter(undefined, { delayMs: 60_000 });
    limiter.failed('127.0.0.2');
    expect(limiter.refusal('127.44.0.9')).toBeGreaterThan(59_000);
    expect(limiter.refusal('::1')).toBeGreaterThan(59_000);
    expect(limiter.refusal('10.0.0.1')).toBe(0);
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

  it('remembers at most maxClients, summing the counts of a client it forgets into one line a window', async () => {
    const { logger, lines } = collecting();
    const limiter = new LoginLimiter(logger, { delayMs: 60_000, maxClients: 3, logEveryMs: 200 });
    for (let i = 1; i <= 10; i++) {
      limiter.failed(`10.0.0.${i}`);
      limiter.failed(`10.0.0.${i}`);
      limiter.refusal(`10.0.0.${i}`);
    }
    expect(limiter.size).toBe(3);
    // Each client's first failure at once.
    expect(lines().map(l => [l['client'], l['failures'], l['refused']])).toEqual(
      Array.from({ length: 10 }, (_, i) => [`10.0.0.${i + 1}`, 1, 0]),
    );
    // The next window: one line for the 7 forgotten (their second failure and refusal), one each for the 3 kept.
    await waitFor(() => lines().length >= 14 || undefined, 'the next window', 5000, 20);
    const later = lines().slice(10);
    expect(
      later.filter(l => l['client'] === undefined).map(l => [l['clients'], l['failures'], l['refused']]),
    ).toEqual([[7, 7, 7]]);
    expect(later.filter(l => l['client'] !== undefined).map(l => l['client'])).toEqual([
      '10.0.0.8',
      '10.0.0.9',
      '10.0.0.10',
    ]);
  });

  it('writes lines of their own for at most LOGIN_LINES_PER_WINDOW clients a window, the rest summed (review of s15)', async () => {
    const { logger, lines } = collecting();
    const limiter = new LoginLimiter(logger, { delayMs: 0, logEveryMs: 200 });
    for (let i = 0; i < LOGIN_LINES_PER_WINDOW + 50; i++) limiter.failed(`10.1.${i >> 8}.${i & 255}`);
    expect(lines()).toHaveLength(LOGIN_LINES_PER_WINDOW);
    await waitFor(() => lines().length > LOGIN_LINES_PER_WINDOW || undefined, 'the summed line', 5000, 20);
    expect(
      lines()
        .slice(LOGIN_LINES_PER_WINDOW)
        .map(l => [l['clients'], l['failures']]),
    ).toEqual([[50, 50]]);
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
