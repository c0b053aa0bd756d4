import { loadConfig, loadConfigUsing, type Config, type ConfigKey, type LogLevel } from '../config.js';
import { InvalidInputError } from '../errors.js';
import { resolveTaskId } from './resolve-task-id.js';

/** The global flags every command has (BaseCommand.baseFlags). */
export interface GlobalFlags {
  'redis-url'?: string;
  'log-level'?: LogLevel;
  debug?: boolean;
  config?: string;
}

/**
 * Whether a settings error is the --config file's own (the rest being fine): the file gone, unreadable or cut
 * short (a line without `=`: an NFS hiccup, a deploy rewriting it, adversary 9 J5), or saying something this
 * version does not take — a key it does not know (a newer JTM's file on a host still running this one), a key
 * given twice, a bad value (adversary 13 E6). `isalive` then answers `unknown` (exit 0), with the file's error on
 * stderr, as when Redis cannot be reached: Cromwell reads any other exit as "dead" and failed every running call.
 * Errors of the environment or the flags are not the file's: they fail as in every command.
 */
export function configFileAtFault(f: GlobalFlags, err: unknown): boolean {
  if (f.config === undefined || !(err instanceof Error)) return false;
  const load = (file: string | undefined): boolean => {
    try {
      loadConfig(undefined, { redisUrl: f['redis-url'] }, file);
      return true;
    } catch {
      return false;
    }
  };
  // The file could not be read (or its text says so): decided on that error, without reading it again — a
  // second read that succeeded (an NFS hiccup over, a deploy's copy done) answered "dead" (review).
  if (/^(cannot read config file|config file) /.test(err.message)) return load(undefined);
  // A bad value: with the file (read once, kept) the settings fail, without it they load (not, say, a bad id).
  return !load(f.config) && load(undefined);
}

/**
 * Whether `isalive` answers `unknown` for an error met while reading its settings (before any task was looked at):
 * its --config file at fault (configFileAtFault), or a setting refused as bad input — in the environment too
 * (`JTM_LOG_LEVEL=warning`, a worker-only or dashboard setting out of range in a shared environment file, two
 * different REDIS_URL and JTM_REDIS_URL). Exit 1 is Cromwell's "dead": every running call it checked was failed
 * while the tasks ran on (adversary 15 P6). Settings that make Redis unusable (credentials, TLS) keep their 255.
 */
export function isaliveAnswersUnknown(
  f: GlobalFlags,
  err: unknown,
  taskId: { flag?: string | undefined; arg?: string | undefined },
): boolean {
  // An id that cannot be a task's is answered as such (exit 1), whatever the settings: `unknown` would have
  // Cromwell poll it for ever (review).
  try {
    resolveTaskId(taskId.flag, taskId.arg);
  } catch {
    return false;
  }
  return err instanceof InvalidInputError || configFileAtFault(f, err);
}

/** isalive's answer when its settings are at fault (isaliveAnswersUnknown): `unknown`, exit 0, said on stderr. */
export function answerUnknownForConfig(err: unknown, json: boolean): void {
  const why = err instanceof Error ? err.message : String(err);
  process.stdout.write(json ? `${JSON.stringify({ alive: 'unknown' })}\n` : 'unknown\n');
  process.stderr.write(`jtm isalive: ${why}: answering unknown (exit 0)\n`);
  process.exitCode = 0;
}

/**
 * The settings a command reads, for commands that must answer whatever the rest of a shared environment says
 * (loadConfigUsing): isalive reads Redis's location and credentials, its timeouts and its logging.
 */
const SETTINGS_READ: Partial<Record<string, ReadonlySet<ConfigKey>>> = {
  isalive: new Set<ConfigKey>([
    'REDIS_URL',
    'JTM_REDIS_URL',
    'JTM_REDIS_TLS_CA',
    'JTM_REDIS_TLS_CERT',
    'JTM_REDIS_TLS_KEY',
    'JTM_PREFIX',
    'JTM_SHARDS',
    'JTM_CONNECT_TIMEOUT',
    'JTM_ISALIVE_RETRY',
    'JTM_LOG_LEVEL',
    'JTM_LOG_REPEAT_INTERVAL',
  ]),
};

/** Log level of the one-shot commands Cromwell calls: quiet unless asked. Daemons use info. */
export const CLIENT_LOG_LEVEL: LogLevel = 'warn';

/**
 * Configuration and log level from the global flags, the config file and the environment: --debug, then
 * --log-level, then a JTM_LOG_LEVEL other than the default, then the command's own default.
 */
export function resolveSettings(
  f: GlobalFlags,
  defaultLevel: LogLevel,
  command?: string,
): { config: Config; level: LogLevel; ignored: string[] } {
  const used = command === undefined ? undefined : SETTINGS_READ[command];
  const load = (overrides: Partial<Config>): { config: Config; ignored: string[] } =>
    used
      ? loadConfigUsing(used, undefined, overrides, f.config)
      : { config: loadConfig(undefined, overrides, f.config), ignored: [] };
  const base = load({}).config;
  const level: LogLevel = f.debug
    ? 'debug'
    : (f['log-level'] ?? (base.logLevel !== 'info' ? base.logLevel : defaultLevel));
  return { ...load({ redisUrl: f['redis-url'], logLevel: level }), level };
}
