import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A proxy in front of Redis that, once armed, passes on the first chunk a client sends that `matches` (a command
 * it names), drops every byte Redis sends back on that connection from then on, and resets it 200 ms later: the
 * command ran, its answer is lost, the client reconnects (a reset or a restart at the worst moment).
 */
export async function startCutProxy(redisPort: number, matches: (chunk: Buffer) => boolean) {
  let armed = false;
  let cut = 0;
  const sockets = new Set<Socket>();
  const server = createServer(client => {
    const upstream = connect(redisPort, '127.0.0.1');
    let dropReplies = false;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      if (armed && matches(chunk)) {
        armed = false;
        dropReplies = true;
        setTimeout(() => {
          cut++;
          client.resetAndDestroy();
          upstream.destroy();
        }, 200);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!dropReplies) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arm: () => {
      armed = true;
    },
    cuts: () => cut,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise(r => server.close(r));
    },
  };
}
