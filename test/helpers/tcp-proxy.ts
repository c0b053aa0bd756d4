import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy to Redis that a test can take down and bring back (a network outage), reset (each open
 * connection cut with an RST, new ones accepted: a network blip), or hold (Redis's bytes kept back for a while,
 * then passed on in order: a stall of the network or of Redis).
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** The clients' sockets, to reset; each with its Redis side. */
  private readonly clients = new Map<Socket, Socket>();
  /** Until when bytes from Redis are held (0: passed on at once), and what waits to be passed on. */
  private heldUntil = 0;
  private readonly held: { to: Socket; chunk: Buffer }[] = [];
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const server = createServer(client => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      this.clients.set(client, upstream);
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        // In order: behind what is held, even once the hold is over and its release not yet run.
        if (Date.now() < this.heldUntil || this.held.length > 0) this.held.push({ to: client, chunk });
        else client.write(chunk);
      });
      client.on('close', () => {
        this.clients.delete(client);
        upstream.destroy();
      });
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Refuses new connections and cuts the open ones. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>(r => server.close(() => r()));
  }

  /** Resets every open connection (the client gets an RST, as from a network fault); new ones are served. */
  reset(): number {
    const n = this.clients.size;
    for (const [client, upstream] of this.clients) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    return n;
  }

  /** Holds every byte from Redis for `ms` (connections open or made meanwhile), then passes them on in order. */
  hold(ms: number): Promise<void> {
    this.heldUntil = Date.now() + ms;
    return new Promise(resolve =>
      setTimeout(() => {
        this.heldUntil = 0;
        for (const { to, chunk } of this.held.splice(0)) if (to.writable) to.write(chunk);
        resolve();
      }, ms),
    );
  }
}

/**
 * A loopback proxy to Redis at `port` whose connections a test wires itself (what passes each way, what is held,
 * dropped or cut): `onClient` gets each client's socket and `toRedis`, which opens that client's Redis side, tied to
 * it (an error or a close of either closes both). A client whose `toRedis` is not called is never answered (a Redis
 * that takes connections and stays silent). `close` destroys every socket and stops listening.
 */
export async function wiredProxy(
  port: number,
  onClient: (client: Socket, toRedis: () => Socket) => void,
): Promise<{ url: string; close: () => void }> {
  const sockets: Socket[] = [];
  const proxy = createServer(client => {
    sockets.push(client);
    client.on('error', () => {});
    onClient(client, () => {
      const server = connect(port, '127.0.0.1');
      sockets.push(server);
      server.on('error', () => client.destroy());
      client.on('close', () => server.destroy());
      server.on('close', () => client.destroy());
      return server;
    });
  });
  await new Promise<void>(r => proxy.listen(0, '127.0.0.1', () => r()));
  return {
    url: `redis://127.0.0.1:${(proxy.address() as { port: number }).port}`,
    close: () => {
      for (const so of sockets) so.destroy();
      proxy.close();
    },
  };
}
