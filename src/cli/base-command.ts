import { Command, Flags, type Interfaces } from '@oclif/core';

import { loadConfig, type Config, type LogLevel } from '../config.js';
import { closeContext, openContext, type JtmContext } from '../context.js';
import { JtmError, toError } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import type { ConnectionRole } from '../redis/connection.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)['baseFlags'] & T['flags']
>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/**
 * Shared flags (--redis-url, --log-level, --config, --debug, --json), configuration, logger and the
 * Redis connection's lifetime. Errors become one line on stderr and the error's exit code; stdout
 * carries only results.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    'redis-url': Flags.string({
      description:
        'Redis URL (redis://, rediss://, user:password@host); default $REDIS_URL or redis://127.0.0.1:6379',
      helpGroup: 'GLOBAL',
    }),
    'log-level': Flags.option({
      description: 'log level (logs go to stderr as JSON)',
      helpGroup: 'GLOBAL',
      options: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const,
    })(),
    debug: Flags.boolean({ description: 'same as --log-level debug', helpGroup: 'GLOBAL' }),
    config: Flags.string({
      description: 'KEY=VALUE configuration file (as $JTM_CONFIG_FILE)',
      helpGroup: 'GLOBAL',
    }),
  };
  static override enableJsonFlag = true;

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  protected jtm!: Config;
  protected logger!: Logger;
  private ctx: JtmContext | undefined;

  /** Default log level of the command: quiet for the one-shot commands Cromwell calls, info for daemons. */
  protected defaultLogLevel(): LogLevel {
    return 'warn';
  }

  public override async init(): Promise<void> {
    await super.init();
    const ctor = this.ctor as typeof BaseCommand;
    const { args, flags } = await this.parse({
      args: this.ctor.args,
      baseFlags: ctor.baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      flags: this.ctor.flags,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
    const f = this.flags as {
      'redis-url'?: string;
      'log-level'?: LogLevel;
      debug?: boolean;
      config?: string;
    };
    const base = loadConfig(undefined, {}, f.config);
    const level: LogLevel = f.debug
      ? 'debug'
      : (f['log-level'] ?? (base.logLevel !== 'info' ? base.logLevel : this.defaultLogLevel()));
    this.jtm = loadConfig(undefined, { redisUrl: f['redis-url'], logLevel: level }, f.config);
    this.logger = await createLogger(level, { cmd: this.id });
  }

  /** The Redis-backed context, opened on first use (commands that need no Redis never connect). */
  protected async context(role: ConnectionRole = 'client'): Promise<JtmContext> {
    this.ctx ??= await openContext(this.jtm, this.logger, role);
    return this.ctx;
  }

  /** Drops a failed connection, so that the next context() call connects again (retry loops). */
  protected async resetContext(): Promise<void> {
    const ctx = this.ctx;
    this.ctx = undefined;
    if (ctx) await closeContext(ctx);
  }

  protected override async catch(
    err: Error & { exitCode?: number; oclif?: { exit?: number } },
  ): Promise<unknown> {
    if (err.oclif?.exit !== undefined && /^EEXIT/.test(err.message)) {
      process.exitCode = err.oclif.exit;
      return;
    }
    const e = toError(err);
    const exitCode = e instanceof JtmError ? e.exitCode : (err.oclif?.exit ?? err.exitCode) === 0 ? 0 : 1;
    const message = e.message.split('\n').find(l => l.trim() !== '') ?? e.name;
    if (this.jsonEnabled?.()) {
      this.logJson({
        error: { code: e instanceof JtmError ? e.code : 'ERROR', message, exit_code: exitCode },
      });
    }
    process.stderr.write(`jtm ${this.id ?? ''}: ${message.replace(/^Error: /, '')}\n`);
    if (!(e instanceof JtmError)) this.logger?.debug({ err: e }, 'unexpected error');
    process.exitCode = exitCode;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    if (this.ctx) await closeContext(this.ctx);
    return super.finally(err);
  }
}
