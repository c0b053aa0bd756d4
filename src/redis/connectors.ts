import { SentinelConnector, type RedisOptions } from 'ioredis';
import * as standalone from 'ioredis/built/connectors/StandaloneConnector.js';

type Connector = NonNullable<RedisOptions['Connector']>;
type ConnectorInstance = InstanceType<Connector>;
type NetStream = Awaited<ReturnType<ConnectorInstance['connect']>>;
/** A connector class as the subclass below sees it: one whose connect() is implemented. */
type ConcreteConnector = new (options: unknown) => {
  connect(...args: Parameters<ConnectorInstance['connect']>): Promise<NetStream>;
};

// ioredis exports no StandaloneConnector (the one it uses for a plain host:port); its file is stable across 5.x.
// Imported statically so that the fast path's bundle holds it. A CommonJS module's default export is
// `module.exports.default` or `module.exports` depending on who loads it (Node, esbuild's ESM or CJS output).
const standaloneModule = standalone as unknown as { default: Connector | { default: Connector } };
const StandaloneConnector =
  typeof standaloneModule.default === 'function'
    ? standaloneModule.default
    : standaloneModule.default.default;

/** Takes the errors a socket emits after its first: they say nothing more (the connection is gone already). */
function ignoreLaterErrors(): void {}

/**
 * `Base` whose sockets keep a listener for 'error' for their whole life. ioredis listens to a socket's errors
 * with `once` (twice: the connector and the client), so a second error on the same socket is an uncaught
 * exception. Node's TLS sockets emit two: a server that wants a client certificate (TLS 1.3) sends its alert
 * ("tlsv13 alert certificate required", emitted as such, without destroying the socket), then resets the
 * connection ("read ECONNRESET", emitted again): the worker exited 1 on an uncaught exception in 1 start in 5
 * (CI, stop 33) instead of saying why with exit 255. ioredis has heard the first error by then and closes the
 * connection on it; the later ones are dropped here.
 */
function keepingErrorListener(Base: Connector): Connector {
  const Keeping = class extends (Base as unknown as ConcreteConnector) {
    override async connect(...args: Parameters<ConnectorInstance['connect']>): Promise<NetStream> {
      const stream = await super.connect(...args);
      stream.on('error', ignoreLaterErrors);
      return stream;
    }
  };
  return Keeping as unknown as Connector;
}

/** The connector for a single Redis (and each node of a cluster). */
export const StandaloneSocketConnector = keepingErrorListener(StandaloneConnector);
/** The connector for a master found through Sentinel; give it the client as its `emitter` (ioredis does). */
export const SentinelSocketConnector = keepingErrorListener(SentinelConnector as unknown as Connector);
