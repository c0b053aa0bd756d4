import type { Config } from './config.js';
import { closeContext, openContext, type ContextSource, type JtmContext } from './context.js';
import {
  asJtmError,
  ClientClosedError,
  isAuthError,
  isConnectionError,
  JtmError,
  RedisUnavailableError,
  UnexpectedError,
} from './errors.js';
import type { Logger } from './logger.js';
import type { RedisClient } from './redis/connection.js';
import { redisLocation } from './redis/location.js';
import { silencedBy, watchSilence } from './redis/silence-watch.js';

/**
 * The Redis side of the programmatic API's client: what a CLI command's session is (a context opened on
 * demand, dropped when it failed so that the next call connects again), for a program that lives long and makes
 * calls at once. Each call runs through run(): its errors become JtmErrors, Redis going silent under it fails it
 * within about JTM_CONNECT_TIMEOUT, and close() waits for it.
 */
export class ClientSession implements ContextSource {
  private ctx: Promise<JtmContext> | undefined;
  /** What `ctx` resolved to. */
  private opened: JtmContext | undefined;
  private readonly calls = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;
  private readonly closed = new AbortController();
  private watched: { redis: RedisClient; stop: () => void } | undefined;

  constructor(
    readonly config: Config,
    readonly logger: Logger,
    first: JtmContext,
  ) {
    this.ctx = Promise.resolve(first);
    this.opened = first;
  }

  /** Aborted when close() is called: what runs until a task ends (followLogs) stops on it. */
  get signal(): AbortSignal {
    return this.closed.signal;
  }

  /** Opens a long-lived client's connection: the whole JTM_CONNECT_TIMEOUT, from now. */
  static open(config: Config, logger: Logger): Promise<JtmContext> {
    return openContext(config, logger, 'client', { longLived: true });
  }

  async context(): Promise<JtmContext> {
    // A connection that has ended (Redis went away, or fell silent) is not handed out: the call connects again.
    if (this.opened && unusable(this.opened.redis)) {
      const old = this.opened;
      this.ctx = undefined;
      this.opened = undefined;
      await this.drop(old);
    }
    // A call in flight may connect again while close() waits for it; nothing else may.
    this.ctx ??= ClientSession.open(this.config, this.logger).then(ctx => (this.opened = ctx));
    const pending = this.ctx;
    try {
      const ctx = await pending;
      this.watch(ctx.redis);
      return ctx;
    } catch (err) {
      if (this.ctx === pending) this.ctx = undefined;
      throw err;
    }
  }

  /**
   * Drops the connection when it can no longer serve (ended, reconnecting, or cut for silence). Calls run at once:
   * one that failed on the old connection must not close the one another call has just opened.
   */
  async resetContext(): Promise<void> {
    const pending = this.ctx;
    if (!pending) return;
    const ctx = await pending.catch(() => undefined);
    if (this.ctx !== pending || (ctx && !unusable(ctx.redis) && ctx.redis.status === 'ready')) return;
    this.ctx = undefined;
    this.opened = undefined;
    if (ctx) await this.drop(ctx);
  }

  /**
   * Runs one call of the API: refused once close() was called; its rejection is a JtmError (Redis's own errors
   * mapped as the CLI maps them), except an error `passThrough` says is the caller's own (a followLogs
   * callback's).
   */
  run<T>(call: () => Promise<T>, passThrough: (err: unknown) => boolean = () => false): Promise<T> {
    if (this.closing) return Promise.reject(new ClientClosedError());
    const p = call().catch((err: unknown) => {
      throw passThrough(err) ? err : this.apiError(err);
    });
    const tracked: Promise<void> = p.then(
      () => this.settled(tracked),
      () => this.settled(tracked),
    );
    this.calls.add(tracked);
    return p;
  }

  /**
   * Closes the client: calls made after it reject with ClientClosedError; calls in flight finish first (a
   * submit is completed, never cut half-written), except followLogs, which stops with ClientClosedError.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed.abort(new ClientClosedError());
      while (this.calls.size > 0) await Promise.allSettled([...this.calls]);
      const pending = this.ctx;
      this.ctx = undefined;
      this.opened = undefined;
      const ctx = await pending?.catch(() => undefined);
      if (ctx) await this.drop(ctx);
    })();
    return this.closing;
  }

  private settled(call: Promise<unknown>): void {
    this.calls.delete(call);
    // The silence watch ticks only while calls wait on Redis.
    if (this.calls.size === 0) this.unwatch();
  }

  private watch(redis: RedisClient): void {
    if (this.watched?.redis === redis) return;
    this.unwatch();
    const budget = this.config.connectTimeoutMs;
    this.watched = { redis, stop: watchSilence(redis, budget, budget * 2) };
  }

  private unwatch(): void {
    this.watched?.stop();
    this.watched = undefined;
  }

  private async drop(ctx: JtmContext): Promise<void> {
    if (this.watched?.redis === ctx.redis) this.unwatch();
    await closeContext(ctx);
  }

  private apiError(err: unknown): Error {
    if (this.closed.signal.aborted && err === this.closed.signal.reason) return err as Error;
    return apiError(err, redisLocation(this.config));
  }
}

/**
 * What the API rejects with: a JtmError, Redis's own errors mapped as the CLI's error report maps them
 * (asJtmError), any connection error of the client (Redis silent: "no answer within N ms"; a connection that
 * has ended: "Stream isn't writeable…") as Redis unreachable, and anything else as UnexpectedError.
 */
export function apiError(err: unknown, where: string): JtmError {
  if (err instanceof JtmError) return err;
  if (!isAuthError(err) && isConnectionError(err)) return new RedisUnavailableError(where, err);
  const e = asJtmError(err, where);
  return e instanceof JtmError ? e : new UnexpectedError(e);
}

/** A connection that can serve no more commands: ended (closed for good), or cut by the silence watch. */
function unusable(redis: RedisClient): boolean {
  return redis.status === 'end' || silencedBy(redis) !== undefined;
}
