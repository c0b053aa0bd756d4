import { describe, expect, it } from 'vitest';

import { deploymentScope, redisIdentity } from '../../../src/redis/location.js';

const scope = (redisUrl: string, prefix = '{jtm}'): string => deploymentScope({ redisUrl, prefix });

describe('the deployment scope of tasks and allocations', () => {
  it('is one for every spelling of one Redis (adversary 12 D12: a lost run was never swept across spellings)', () => {
    const one = scope('redis://127.0.0.1:8050');
    for (const url of [
      'redis://localhost:8050',
      'redis://127.0.0.1:8050/0',
      'redis://LOCALHOST:8050/',
      'redis://:secret@127.0.0.1:8050',
      'redis://default:other@127.0.0.1:8050',
      'rediss://[::1]:8050/0',
    ])
      expect([url, scope(url)]).toEqual([url, one]);
    expect(scope('redis://127.0.0.1')).toBe(scope('redis://localhost:6379/0'));
    // No REDIS_URL is the default server.
    expect(deploymentScope({ redisUrl: undefined, prefix: '{jtm}' })).toBe(scope('redis://127.0.0.1:6379'));
    expect(scope('redis+cluster://b:7001,a:7000')).toBe(scope('redis+cluster://A:7000,b:7001'));
  });

  it('differs for another server, port, database, prefix, or a cluster', () => {
    const one = scope('redis://127.0.0.1:8050');
    for (const other of [
      scope('redis://127.0.0.1:8051'),
      scope('redis://127.0.0.1:8050/1'),
      scope('redis://10.0.0.2:8050'),
      scope('redis://127.0.0.1:8050', '{jtma}'),
      scope('redis+cluster://127.0.0.1:8050'),
      // An ACL user may select its own keyspace (Dragonfly's namespaces).
      scope('redis://alice:x@127.0.0.1:8050'),
    ])
      expect(other).not.toBe(one);
  });

  it('holds no password', () => {
    expect(redisIdentity('redis://u:hunter2@db.example.org:6380/2')).toBe('single:u@db.example.org:6380/2');
    expect(redisIdentity('redis+sentinel://s1:26379,s2:26379/main')).toBe(
      'sentinel:default@s1:26379,s2:26379/main',
    );
  });
});
