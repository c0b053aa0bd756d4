import type { JtmContext } from './context.js';

/**
 * Says at start what in Redis's settings loses tasks (docs/reliability.md): no append-only file (`appendonly no`,
 * Redis's default: a restart loses every write since the last snapshot, minutes of submits and ends), and an
 * eviction policy (anything but `noeviction`: a full Redis drops task records and queue jobs, and a running
 * task's isalive answers no, adversary 13 E5). The policy comes from INFO, which a least-rights user may run;
 * silent about what it may not read (managed Redis, no CONFIG).
 */
export async function warnAboutRedisSettings(ctx: JtmContext): Promise<void> {
  try {
    const policy = /^maxmemory_policy:(\S+)/m.exec(await ctx.redis.info('memory'))?.[1];
    if (policy !== undefined && policy !== 'noeviction')
      ctx.logger.warn(
        { maxmemory_policy: policy },
        `Redis evicts keys when it is full (maxmemory-policy ${policy}): it can drop task records and queue jobs, and a running task then answers isalive no; set maxmemory-policy noeviction (docs/reliability.md)`,
      );
  } catch (err) {
    ctx.logger.debug({ err }, 'cannot read Redis maxmemory policy');
  }
  try {
    const reply = (await ctx.redis.config('GET', 'appendonly')) as string[];
    if (reply[1] === 'no')
      ctx.logger.warn(
        'Redis runs without an append-only file (appendonly no): a Redis restart loses every submit, start and end since its last snapshot; set appendonly yes (docs/reliability.md)',
      );
  } catch (err) {
    ctx.logger.debug({ err }, 'cannot read Redis appendonly setting');
  }
}
