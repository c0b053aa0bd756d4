import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Express } from 'express';

import { InvalidInputError, toError } from '../errors.js';

/**
 * Listens on host:port, or fails with one line saying why (a busy port, an address this host does not have,
 * a port out of range): a server (the dashboard, the metrics endpoint) that cannot listen is a setting that cannot work, not a transient fault.
 */
export async function listen(
  app: Express,
  host: string,
  port: number,
  what: 'dashboard' | 'metrics endpoint',
): Promise<Server> {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  try {
    return await new Promise<Server>((resolve, reject) => {
      const s = app.listen(port, host, err => (err ? reject(err) : resolve(s)));
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why: Record<string, string> = {
      EADDRINUSE: 'the port is in use',
      EACCES: 'permission denied (ports below 1024 need privileges)',
      EADDRNOTAVAIL: 'the address is not one of this host',
      ENOTFOUND: 'unknown host',
      EAI_AGAIN: 'unknown host',
      ERR_SOCKET_BAD_PORT: 'not a port (0 to 65535)',
    };
    throw new InvalidInputError(
      `${what} cannot listen on ${where}: ${(code && why[code]) ?? toError(err).message}${code ? ` (${code})` : ''}`,
    );
  }
}

/** A server listening: its origin (`http://host:port`, an IPv6 host in brackets) and a close that ends it. */
export interface Listening {
  server: Server;
  origin: string;
  /** Stops listening and ends the open connections (a browser's keep-alive would hold the close). */
  close(): Promise<void>;
}

/** listen, with the origin it is reached at and a close that does not wait for idle keep-alive connections. */
export async function listenAt(
  app: Express,
  host: string,
  port: number,
  what: 'dashboard' | 'metrics endpoint',
): Promise<Listening> {
  const server = await listen(app, host, port, what);
  const { port: bound } = server.address() as AddressInfo;
  return {
    server,
    origin: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    close: () =>
      new Promise<void>(r => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
