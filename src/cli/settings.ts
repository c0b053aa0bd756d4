import { loadConfig, type Config, type LogLevel } from '../config.js';

/** The global flags every command has (BaseCommand.baseFlags). */
export interface GlobalFlags {
  'redis-url'?: string;
  'log-level'?: LogLevel;
  debug?: boolean;
  config?: string;
}

/** Log level of the one-shot commands Cromwell calls: quiet unless asked. Daemons use info. */
export const CLIENT_LOG_LEVEL: LogLevel = 'warn';

/**
 * Configuration and log level from the global flags, the config file and the environment: --debug, then
 * --log-level, then a JTM_LOG_LEVEL other than the default, then the command's own default.
 */
export function resolveSettings(f: GlobalFlags, defaultLevel: LogLevel): { config: Config; level: LogLevel } {
  const base = loadConfig(undefined, {}, f.config);
  const level: LogLevel = f.debug
    ? 'debug'
    : (f['log-level'] ?? (base.logLevel !== 'info' ? base.logLevel : defaultLevel));
  return { config: loadConfig(undefined, { redisUrl: f['redis-url'], logLevel: level }, f.config), level };
}
