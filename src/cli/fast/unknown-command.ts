import { LOG_LEVELS } from '../../config.js';
import { readManifest } from './manifest.js';

/** What oclif itself answers before a command: help and version. */
const ROOT_FLAGS = new Set(['--help', '-h', '--version', '-v']);
const GLOBALS = '--config, --debug, --redis-url, --log-level (-l)';

/** The value of a --log-level that normaliseArgv moved to the end (`--log-level X` or `--log-level=X`). */
function levelGiven(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i] as string;
    if (t.startsWith('--log-level=')) return t.slice('--log-level='.length);
    if (t === '--log-level') return argv[i + 1];
  }
  return undefined;
}

/**
 * The one-line error for a command that does not exist, for a flag before the command that is not a
 * global one (oclif's own answer is "command -l not found", several lines, exit 2), or for a stray word right
 * after a command that takes no argument, or after `help`; undefined when the command line starts with a
 * command, help or version, or is empty, or when there is no manifest.
 * normaliseArgv has already moved the global flags after the command, so a flag still in front is unknown.
 */
export function unknownCommandMessage(argv: readonly string[], manifestUrl: URL): string | undefined {
  const [first, second] = argv;
  if (first === undefined || ROOT_FLAGS.has(first)) return undefined;
  const manifest = readManifest(manifestUrl);
  if (!manifest) return undefined;
  const known = Object.keys(manifest.commands).sort().join(', ');
  // A word right after the command name is taken by oclif for a subcommand (`pools extra` → " ›   Error:
  // command pools:extra not found", exit 2; `help extra` → "Command extra not found.", exit 2): said here in
  // the command's one line, exit 1, as the same word after a flag is (adversary 34 M3). Only for commands
  // that take no argument: `status 12` is an id.
  const stray =
    second !== undefined && !second.startsWith('-') && !(`${first}:${second}` in manifest.commands);
  if (first === 'help') {
    return stray && !(second in manifest.commands)
      ? `jtm help: unknown command ${second}; commands: ${known} (jtm --help)`
      : undefined;
  }
  const command = manifest.commands[first];
  if (command) {
    return stray && Object.keys(command.args ?? {}).length === 0
      ? `jtm ${first}: Unexpected argument: ${second}`
      : undefined;
  }
  if (first.startsWith('-')) {
    // `jtm --log-level status -tid 1`: the command was taken as the level, and the flags after it were left in
    // front ("unknown flag -tid before the command": adversary 34 M8).
    const level = levelGiven(argv);
    if (level !== undefined && level in manifest.commands) {
      return `jtm : --log-level needs a level before the command (${LOG_LEVELS.join(', ')}); got the command ${level}`;
    }
    const flag = first.replace(/=.*$/s, '');
    const global = /^--(config|debug|redis-url|log-level)$/.test(flag);
    return global
      ? `jtm : no command given after ${flag}; commands: ${known} (jtm --help)`
      : `jtm : unknown flag ${flag} before the command; global flags: ${GLOBALS}; commands: ${known} (jtm --help)`;
  }
  return `jtm ${first}: unknown command; commands: ${known} (jtm --help)`;
}
