import { loadConfig, type Config, type LogLevel } from '../config.js';

/** The global flags every command has (BaseCommand.baseFlags). */
export interface GlobalFlags {
  'redis-url'?: string;
  'log-level'?: LogLevel;
  debug?: boolean;
  config?: string;
}

/**
 * Whether a settings error is the --config file's own and may pass (the file gone, unreadable, or cut short:
 * a line without `=`), the rest being fine: `isalive` then answers `unknown` (exit 0) as it does when Redis cannot
 * be reached, since Cromwell reads exit 1 as "dead" and failed a running call over an NFS hiccup or a deploy
 * rewriting the file (adversary 9 J5). A file that says something wrong (an unknown key, a key twice, a bad value)
 * is refused as before: it does not heal by itself.
 */
export function configFileAtFault(f: GlobalFlags, err: unknown): boolean {
  if (f.config === undefined) return false;
  const message = err instanceof Error ? err.message : '';
  if (!/^cannot read config file |: expected KEY=VALUE$/.test(message)) return false;
  try {
    loadConfig(undefined, { redisUrl: f['redis-url'] }, undefined);
    return true;
  } catch {
    return false;
  }
}

/** isalive's answer when its --config file is at fault (configFileAtFault): `unknown`, exit 0, said on stderr. */
export function answerUnknownForConfig(err: unknown, json: boolean): void {
  const why = err instanceof Error ? err.message : String(err);
  process.stdout.write(json ? `${JSON.stringify({ alive: 'unknown' })}\n` : 'unknown\n');
  process.stderr.write(`jtm isalive: ${why}: answering unknown (exit 0)\n`);
  process.exitCode = 0;
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
