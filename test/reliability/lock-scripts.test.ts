// The scripts moved out of the manager and provisioning into src/redis/scripts.ts (release-lock,
// drop-pool-if-untouched), in-process against the test Redis, and the rule that keeps all Lua in that module.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { runScript } from '../../src/redis/run-script.js';
import { DROP_POOL_IF_UNTOUCHED, FIND_LOCKED_BY, RELEASE_LOCK } from '../../src/redis/scripts.js';
import { useTestContext } from '../helpers/context.js';
import { testEnv } from '../helpers/env.js';

const ctx = useTestContext(testEnv());

describe('release-lock', () => {
  it('frees the lock only for the token that holds it', async () => {
    const key = ctx().keys.managerLease;
    await ctx().redis.set(key, 'mine', 'PX', 60_000);
    expect(await runScript(ctx().redis, RELEASE_LOCK, [key], ['theirs'])).toBe(0);
    expect(await ctx().redis.get(key)).toBe('mine');
    expect(await runScript(ctx().redis, RELEASE_LOCK, [key], ['mine'])).toBe(1);
    expect(await ctx().redis.exists(key)).toBe(0);
    expect(await runScript(ctx().redis, RELEASE_LOCK, [key], ['mine'])).toBe(0);
  });
});

describe('drop-pool-if-untouched', () => {
  const keysOf = (name: string) => [ctx().keys.pool(name), ctx().keys.pools, ctx().keys.poolSlurmJobs(name)];

  it('drops the entry, its Slurm registry and its name when last_activity is unchanged', async () => {
    await ctx().redis.hset(ctx().keys.pool('idle'), 'last_activity', '1000');
    await ctx().redis.hset(ctx().keys.poolSlurmJobs('idle'), '42', '{}');
    await ctx().redis.sadd(ctx().keys.pools, 'idle');
    expect(await runScript(ctx().redis, DROP_POOL_IF_UNTOUCHED, keysOf('idle'), ['1000', 'idle'])).toBe(1);
    expect(await ctx().redis.exists(ctx().keys.pool('idle'), ctx().keys.poolSlurmJobs('idle'))).toBe(0);
    expect(await ctx().redis.sismember(ctx().keys.pools, 'idle')).toBe(0);
  });

  it('leaves a pool a submit touched meanwhile', async () => {
    await ctx().redis.hset(ctx().keys.pool('busy'), 'last_activity', '2000');
    await ctx().redis.sadd(ctx().keys.pools, 'busy');
    expect(await runScript(ctx().redis, DROP_POOL_IF_UNTOUCHED, keysOf('busy'), ['1000', 'busy'])).toBe(0);
    expect(await ctx().redis.hget(ctx().keys.pool('busy'), 'last_activity')).toBe('2000');
    expect(await ctx().redis.sismember(ctx().keys.pools, 'busy')).toBe(1);
  });
});

describe('find-locked-by', () => {
  it("lists the active jobs locked by one worker's tokens, with each token; not another's, not an unlocked one", async () => {
    const q = ctx().keys.poolQueueKey('flb', '');
    await ctx().redis.rpush(`${q}active`, 'j1', 'j2', 'j3', 'j4');
    await ctx().redis.set(`${q}j1:lock`, 'w-a:7');
    await ctx().redis.set(`${q}j2:lock`, 'w-b:1');
    await ctx().redis.set(`${q}j4:lock`, 'w-a:9');
    // A worker whose id is a prefix of another's is not taken for it: the colon ends the id.
    await ctx().redis.set(`${q}j3:lock`, 'w-ab:2');
    expect(await runScript(ctx().redis, FIND_LOCKED_BY, [`${q}active`], [q, 'w-a:'])).toEqual([
      'j1',
      'w-a:7',
      'j4',
      'w-a:9',
    ]);
    expect(await runScript(ctx().redis, FIND_LOCKED_BY, [`${q}active`], [q, 'w-c:'])).toEqual([]);
  });
});

describe('all Lua in src/redis/scripts.ts', () => {
  const root = join(import.meta.dirname, '../../src');
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap(e =>
      e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    );

  it('no other module holds script text or calls eval/defineCommand', () => {
    const offenders = files(root)
      .filter(f => !f.endsWith('/redis/scripts.ts') && !f.endsWith('/redis/run-script.ts'))
      .filter(f => /redis\.call|\.eval\(|\.evalsha\(|defineCommand/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('the scripts write no status code as a literal (they interpolate TaskStatus)', () => {
    const text = readFileSync(join(root, 'redis/scripts.ts'), 'utf8');
    const literal = /'status', -?\d|cur [=~]= -?\d|to, why = -?\d|return \{0, -\d|from = -?\d|to = -?\d/;
    expect(text.split('\n').filter(l => literal.test(l))).toEqual([]);
  });
});
