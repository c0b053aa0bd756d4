import { Command, Flags, type Interfaces } from '@oclif/core';

import type { Config, LogLevel } from '../config.js';
import { closeContext, openContext, type JtmContext } from '../context.js';
import { captureStrayOutput, createLogger, type Logger } from '../logger.js';
import type { ConnectionRole } from '../redis/connection.js';
import { redisLocation } from '../redis/location.js';
import { refuseBooleanValues, shieldDashValues } from './dash-values.js';
import { reportError, type Thrown } from './error-report.js';
import type { CommandSession } from './session.js';
import {
  answerUnknownForConfig,
  CLIENT_LOG_LEVEL,
  isaliveAnswersUnknown,
  resolveSettings,
} from './settings.js';

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
    return CLIENT_LOG_LEVEL;
  }

  public override async init(): Promise<void> {
    await super.init();
    const ctor = this.ctor as typeof BaseCommand;
    const allFlags = { ...ctor.baseFlags, ...this.ctor.flags };
    // oclif adds --json itself (enableJsonFlag): `status --json=yes -tid 1` said "two task ids given (-tid 1 and
    // yes)" (adversary 34 M8).
    refuseBooleanValues(
      this.argv,
      this.ctor.enableJsonFlag ? { ...allFlags, json: { type: 'boolean' } } : allFlags,
    );
    const shield = shieldDashValues(this.argv, allFlags);
    const { args, flags } = await this.parse(
      {
        args: this.ctor.args,
        baseFlags: ctor.baseFlags,
        enableJsonFlag: this.ctor.enableJsonFlag,
        flags: this.ctor.flags,
        strict: this.ctor.strict,
      },
      shield.argv,
    );
    shield.restore(flags);
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
    const { config, level, ignored } = resolveSettings(this.flags, this.defaultLogLevel(), this.id);
    this.jtm = config;
    this.logger = await createLogger(level, { cmd: this.id });
    captureStrayOutput(this.logger, config.logRepeatIntervalMs);
    for (const why of ignored) this.logger.warn(`${why}: ignored (${this.id} does not read it)`);
  }

  /** This command as the session of a shared command body (src/cli/actions/). */
  protected session(): CommandSession {
    return {
      config: this.jtm,
      logger: this.logger,
      json: this.jsonEnabled(),
      print: text => {
        if (!this.jsonEnabled()) process.stdout.write(text);
      },
      context: () => this.context(),
      resetContext: () => this.resetContext(),
    };
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

  protected override async catch(err: Thrown): Promise<unknown> {
    if (err.oclif?.exit !== undefined && /^EEXIT/.test(err.message)) {
      process.exitCode = err.oclif.exit;
      return;
    }
    if (
      this.id === 'isalive' &&
      this.flags &&
      this.jtm === undefined &&
      isaliveAnswersUnknown(this.flags, err, {
        flag: (this.flags as { task_id?: string }).task_id,
        arg: (this.args as { id?: string } | undefined)?.id,
      })
    ) {
      answerUnknownForConfig(err, this.jsonEnabled?.() ?? false);
      return;
    }
    const report = reportError(err, this.id, this.jtm ? redisLocation(this.jtm) : undefined);
    if (this.jsonEnabled?.()) this.logJson(report.json);
    process.stderr.write(report.line);
    if (report.unexpected) this.logger?.debug({ err: report.unexpected }, 'unexpected error');
    process.exitCode = report.exitCode;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    if (this.ctx) await closeContext(this.ctx);
    return super.finally(err);
  }
}
