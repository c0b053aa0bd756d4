import { describe, expect, it } from 'vitest';

import { loadConfig } from '../../../src/config.js';
import { maskUrl } from '../../../src/redis/connection.js';
import { parseRedisUrl } from '../../../src/redis/redis-url.js';

describe('Redis URLs', () => {
  const config = loadConfig({});
  it('masks passwords', () => {
    expect(maskUrl('redis://user:pw@h:1')).toBe('redis://user:***@h:1');
    expect(maskUrl('rediss://:pw@h:1/0')).toBe('rediss://***@h:1/0');
    expect(maskUrl('redis://h:1')).toBe('redis://h:1');
  });
  it('parses ACL users, TLS, cluster and sentinel URLs', () => {
    expect(parseRedisUrl('redis://jtm:p%40ss@10.0.0.1:6380/2', config)).toMatchObject({
      kind: 'single',
      nodes: [{ host: '10.0.0.1', port: 6380 }],
      options: { username: 'jtm', password: 'p@ss', db: 2 },
    });
    expect(parseRedisUrl('rediss://h:6380', config).options.tls).toEqual({});
    expect(parseRedisUrl('redis+cluster://a:1,b:2', config)).toMatchObject({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 1 },
        { host: 'b', port: 2 },
      ],
    });
    expect(parseRedisUrl('redis+sentinel://a:26379/main', config)).toMatchObject({
      kind: 'sentinel',
      sentinelName: 'main',
    });
  });

  it('reads [IPv6]:port, and refuses a host part that is not host, host:port or [IPv6]:port (adversary 35 F9)', () => {
    expect(parseRedisUrl('redis://[::1]:7400', config).nodes).toEqual([{ host: '::1', port: 7400 }]);
    expect(parseRedisUrl('redis://[fe80::1]', config).nodes).toEqual([{ host: 'fe80::1', port: 6379 }]);
    expect(parseRedisUrl('redis://:7400', config).nodes).toEqual([{ host: '127.0.0.1', port: 7400 }]);
    expect(parseRedisUrl('redis+cluster://a:1,[::1]:2', config).nodes).toEqual([
      { host: 'a', port: 1 },
      { host: '::1', port: 2 },
    ]);
    // Before: host "[" (an outage after the connect timeout), and port 7400 of 127.0.0.1.
    for (const [url, part] of [
      ['redis://[::1:8040', '[::1:8040'],
      ['redis://:7400:9', ':7400:9'],
      ['redis://::1', '::1'],
      ['redis://h st:1', 'h st:1'],
    ] as const)
      expect(() => parseRedisUrl(url, config), url).toThrow(
        `${JSON.stringify(part)} is not host, host:port or [IPv6 address]:port`,
      );
  });

  it('refuses options in a query or fragment rather than ignoring them (?tls=true connected in clear)', () => {
    for (const url of [
      'redis://h:6380/?tls=true',
      'redis://h:6380?tls=true',
      'redis://h/0#x',
      'redis://h?',
    ]) {
      expect(() => parseRedisUrl(url, config)).toThrow(
        /options in the URL \(what follows its [?#]\) are not read/,
      );
    }
    // Neither the user's password nor a value in the query is shown.
    // Nor the names: `?pw:secret` is one (adversary 42 H1).
    for (const url of ['redis://u:secret@h/?password=other&tls=1', 'redis://h:6379?pw:secret']) {
      expect(() => parseRedisUrl(url, config), url).toThrow(
        /^(?!.*(secret|other|\(password|pw:)).*options in the URL/,
      );
    }
  });

  it('masks and reads a password holding / @ # or a bare % (generated passwords do; they were shown in clear)', () => {
    for (const [url, shown] of [
      ['redis://:sec/ret@h:7409', 'redis://***@h:7409'],
      ['redis://user:sec/ret@h:7401/2', 'redis://user:***@h:7401/2'],
      ['redis://:pa@ss@h:7409', 'redis://***@h:7409'],
      ['redis://:x$(touch${IFS}/tmp/p)@h:7401', 'redis://***@h:7401'],
    ] as const) {
      expect(maskUrl(url)).toBe(shown);
    }
    expect(parseRedisUrl('redis://user:sec/ret@h:7401/2', config)).toMatchObject({
      nodes: [{ host: 'h', port: 7401 }],
      options: { username: 'user', password: 'sec/ret', db: 2 },
    });
    expect(parseRedisUrl('redis://:pa@ss@h', config).options.password).toBe('pa@ss');
    expect(parseRedisUrl('redis://:50%off@h', config).options.password).toBe('50%off');
    expect(parseRedisUrl('redis://:a%40b@h', config).options.password).toBe('a@b');
  });

  it('never shows the password, whatever the shape of the URL: no host, a mistyped scheme, no @ (adversary 40 H1)', () => {
    const pw = 's3cr3tPW';
    const parseError = (url: string): string => {
      try {
        parseRedisUrl(url, config);
      } catch (err) {
        return (err as Error).message;
      }
      return 'accepted';
    };
    for (const [url, shown, why] of [
      ['redis://jtm:s3cr3tPW@', 'redis://jtm:***@', /no host after the @/],
      ['redis://:s3cr3tPW@', 'redis://***@', /no host after the @/],
      ['rediss://jtm:s3cr3tPW@', 'rediss://jtm:***@', /no host after the @/],
      ['redis+cluster://jtm:s3cr3tPW@', 'redis+cluster://jtm:***@', /no host after the @/],
      ['redis+sentinel://jtm:s3cr3tPW@/m', 'redis+sentinel://jtm:***@/m', /no host after the @/],
      ['redis://jtm:s3cr3tPW@?x=1', 'redis://jtm:***@?x=1', /no host after the @/],
      ['redis://jtm:s3cr3tPW@h@', 'redis://jtm:***@', /no host after the @/],
      ['redis://', 'redis://', /no host: /],
      ['redis:/jtm:s3cr3tPW@127.0.0.1:8174', 'redis:/***@127.0.0.1:8174', /not a redis:\/\//],
      ['redis:jtm:s3cr3tPW@127.0.0.1:8174', 'redis:***@127.0.0.1:8174', /not a redis:\/\//],
      ['jtm:s3cr3tPW@127.0.0.1:8174', '***@127.0.0.1:8174', /not a redis:\/\//],
      ['REDIS:jtm:s3cr3tPW@h', 'REDIS:***@h', /not a redis:\/\//],
      ['//jtm:s3cr3tPW@h', '***@h', /not a redis:\/\//],
      ['http://jtm:s3cr3tPW@h', 'http://jtm:***@h', /not a redis:\/\//],
      // No @ at all: user and password read as host and port (the @host missing).
      ['redis://jtm:s3cr3tPW', 'redis://jtm:***', /the text after "jtm:" is not a port .*needs @host/],
      ['redis://:s3cr3tPW', 'redis://:***', /the text after ":" is not a port/],
      ['redis://jtm:s3cr:3tPW', 'redis://jtm:***', /"jtm:\*\*\*" is not host, host:port/],
      ['redis+cluster://a:1,jtm:s3cr3tPW', 'redis+cluster://a:1,jtm:***', /the text after "jtm:"/],
      // An unencoded `#`, `?` or `/` in a password without `@host`: the rest was shown as options or a path
      // (adversary 42 H1: "not read (Sekr)").
      ['redis://u:s3cr#3tPW', 'redis://u:***', /the text after "u:" is not a port/],
      ['redis://u:s3cr?3tPW', 'redis://u:***', /the text after "u:" is not a port/],
      ['redis://u:s3cr/3tPW', 'redis://u:***', /the text after "u:" is not a port/],
      ['redis+sentinel://u:s3cr?3tPW', 'redis+sentinel://u:***', /the text after "u:" is not a port/],
      ['redis://u:s3cr#3tPW/0', 'redis://u:***', /the text after "u:" is not a port/],
      ['redis://u:s3cr,3tPW', 'redis://u:***', /the text after "u:" is not a port/],
      ['redis+cluster://a:1,u:s3cr,3tPW', 'redis+cluster://a:1,u:***', /the text after "u:" is not a port/],
      ['redis:u:s3cr3tPW', 'redis:***', /not a redis:\/\//],
      ['u:s3cr3tPW', '***', /not a redis:\/\//],
    ] as const) {
      expect(maskUrl(url), url).toBe(shown);
      const message = parseError(url);
      expect(message, url).not.toContain(pw);
      expect(message, url).toContain(`REDIS_URL ${shown}`);
      expect(message, url).toMatch(why);
      expect(message, url).not.toMatch(/options in the URL/);
    }
    // What cannot be a password is still quoted: it says what is wrong.
    for (const [url, why] of [
      ['redis://h:99999', 'port "99999" is not a port'],
      ['redis://[::1]:99999', 'port "99999" is not a port'],
      ['redis://:7400:9', '":7400:9" is not host'],
    ] as const) {
      expect(maskUrl(url), url).toBe(url);
      expect(parseError(url), url).toContain(why);
    }
  });
});
