// A connection's concurrent first runs of a script run in the order they were sent, whoever else loads it
// meanwhile (src/redis/run-script.ts). They were each answered NOSCRIPT and sent again as EVAL, and when another
// client loaded the script between two of them reaching Redis, the later ones ran first: a 2,600-task submit got
// ids 1251–2000 for its first 750 tasks (a new user's full run, s19).
import { randomUUID } from 'node:crypto';
import { connect, createServer, type AddressInfo } from 'node:net';

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runScript } from '../../src/redis/run-script.js';
import { startPlainRedis, type Server } from './servers.js';

let server: Server;
beforeAll(async () => {
  server = await startPlainRedis();
});
afterAll(async () => {
  await server.stop();
});

/** Counts of NOSCRIPT errors and EVAL calls Redis has seen (INFO errorstats, commandstats). */
async function fallbacks(redis: Redis): Promise<{ noscript: number; evals: number }> {
  const info = await redis.info('all');
  const noscript = /errorstat_NOSCRIPT:count=(\d+)/.exec(info)?.[1];
  const evals = /cmdstat_eval:calls=(\d+)/.exec(info)?.[1];
  return { noscript: Number(noscript ?? 0), evals: Number(evals ?? 0) };
}

describe('runScript', () => {
  it("runs a connection's concurrent first runs of a new script in the order sent, while another client loads it", async () => {
    // Between this connection and Redis, a proxy that passes its commands on one at a time, each once the one before
    // is answered, and holds them after Redis's first NOSCRIPT until the other client has loaded the script: the
    // moment the s19 run hit by chance (a large submit's chunks reach Redis in several reads).
    let loaded = (): void => {};
    const otherLoaded = new Promise<void>(r => (loaded = r));
    let sawNoscript = (): void => {};
    const noscript = new Promise<void>(r => (sawNoscript = r));
    const proxy = createServer(client => {
      const upstream = connect(server.port, '127.0.0.1');
      const commands = commandSplitter();
      const queue: Buffer[] = [];
      // A command is out until its answer has come (and, after the first NOSCRIPT, the other client's load).
      let out = false;
      let held = false;
      const next = (): void => {
        const command = queue.shift();
        out = command !== undefined;
        if (command) upstream.write(command);
      };
      client.on('data', (chunk: Buffer) => {
        queue.push(...commands(chunk));
        if (!out) next();
      });
      upstream.on('data', (chunk: Buffer) => {
        client.write(chunk);
        if (chunk.includes('-NOSCRIPT') && !held) {
          held = true;
          sawNoscript();
        }
        void (held ? otherLoaded : Promise.resolve()).then(next);
      });
      for (const s of [client, upstream]) s.on('error', () => s.destroy());
      client.on('close', () => upstream.destroy());
    });
    await new Promise<void>(r => proxy.listen(0, '127.0.0.1', r));
    const mine = new Redis((proxy.address() as AddressInfo).port, '127.0.0.1');
    const other = new Redis(server.port, '127.0.0.1');
    try {
      const script = `-- ${randomUUID()}\nreturn redis.call('RPUSH', KEYS[1], ARGV[1])`;
      const key = `order-${randomUUID()}`;
      await mine.ping();
      const runs = Array.from({ length: 20 }, (_, i) => runScript(mine, script, [key], [String(i)]));
      // Without a NOSCRIPT the proxy holds nothing, and the runs end by themselves.
      await Promise.race([noscript.then(async () => other.script('LOAD', script)), Promise.all(runs)]);
      loaded();
      await Promise.all(runs);
      expect((await other.lrange(key, 0, -1)).map(Number)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    } finally {
      loaded();
      mine.disconnect();
      other.disconnect();
      proxy.close();
    }
  });

  it('an ACL user without SCRIPT: runs by the fallback, its load refused once per connection, not at every run', async () => {
    const admin = new Redis(server.port, '127.0.0.1');
    await admin.acl('SETUSER', 'noscript', 'on', '>pw', '~*', '&*', '+@all', '-script');
    const mine = new Redis({ port: server.port, host: '127.0.0.1', username: 'noscript', password: 'pw' });
    try {
      const script = `-- ${randomUUID()}\nreturn ARGV[1]`;
      const noperm = async (): Promise<number> =>
        Number(/errorstat_NOPERM:count=(\d+)/.exec(await admin.info('errorstats'))?.[1] ?? 0);
      const before = await noperm();
      for (let i = 0; i < 5; i++) expect(await runScript(mine, script, [], [String(i)])).toBe(String(i));
      expect((await noperm()) - before).toBe(1);
    } finally {
      mine.disconnect();
      admin.disconnect();
    }
  });

  it('loads a script once per connection, before its first run, and again after a reconnect to a Redis that lost it', async () => {
    const mine = new Redis(server.port, '127.0.0.1');
    const admin = new Redis(server.port, '127.0.0.1');
    try {
      const script = `-- ${randomUUID()}\nreturn 1`;
      const before = await fallbacks(admin);
      await Promise.all(Array.from({ length: 5 }, async () => runScript(mine, script, [], [])));
      expect(await fallbacks(admin)).toEqual(before);
      // Redis lost its scripts (a restart) and the connection was cut: its first run after the reconnect loads it.
      await admin.script('FLUSH');
      const id = await mine.client('ID');
      await admin.client('KILL', 'ID', String(id));
      await new Promise(r => setTimeout(r, 300));
      await Promise.all(Array.from({ length: 5 }, async () => runScript(mine, script, [], [])));
      expect(await fallbacks(admin)).toEqual(before);
    } finally {
      mine.disconnect();
      admin.disconnect();
    }
  });
});

/** Splits a client's byte stream into whole RESP commands (arrays of bulk strings, as ioredis sends them). */
function commandSplitter(): (chunk: Buffer) => Buffer[] {
  let pending = Buffer.alloc(0);
  return chunk => {
    pending = Buffer.concat([pending, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const end = commandEnd(pending);
      if (end === undefined) return out;
      out.push(pending.subarray(0, end));
      pending = pending.subarray(end);
    }
  };
}

/** The length of the whole command at the start of `buf`, or undefined if it has not all come yet. */
function commandEnd(buf: Buffer): number | undefined {
  const line = (from: number): [string, number] | undefined => {
    const eol = buf.indexOf('\r\n', from);
    return eol < 0 ? undefined : [buf.toString('latin1', from + 1, eol), eol + 2];
  };
  const head = line(0);
  if (!head) return undefined;
  let at = head[1];
  for (let n = Number(head[0]); n > 0; n--) {
    const size = line(at);
    if (!size) return undefined;
    at = size[1] + Number(size[0]) + 2;
    if (at > buf.length) return undefined;
  }
  return at;
}
