// Which task files of the node's shared log dir still have a record, on a sharded site (JTM_SHARDS=3 on one
// Redis: the shards are hash tags, the routing is the same as on a Cluster).
import { describe, expect, it } from 'vitest';

import { forShard, forTask } from '../../src/context.js';
import { taskRecordsExist } from '../../src/worker/log-dir-prune.js';
import { useTestContext } from '../helpers/context.js';
import { testEnv } from '../helpers/env.js';

const ctx = useTestContext(testEnv({ JTM_SHARDS: '3' }));

describe('the log dir prune on a sharded site', () => {
  it("asks each task's own shard: other shards' tasks on the node are not taken for expired (adversary 11 L8's kin)", async () => {
    const ids = [30, 31, 32, 40, 41, 42];
    for (const id of [30, 31, 32])
      await forTask(ctx(), id).redis.hset(forTask(ctx(), id).keys.task(id), 'status', '3');
    // Asked by a worker of shard 0: before, every id was looked up in shard 0 (31 and 32 "gone", files removed).
    expect(await taskRecordsExist(forShard(ctx(), 0), ids)).toEqual([true, true, true, false, false, false]);
  });
});
