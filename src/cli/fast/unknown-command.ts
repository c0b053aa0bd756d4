import { readManifest } from './manifest.js';

/** What oclif itself answers before a command: help and version. */
const ROOT_FLAGS = new Set(['--help', '-h', '--version', '-v']);
const GLOBALS = '--config, --debug, --redis-url, --log-level (-l)';

/**
 * The one-line error for a command that does not exist, or for a flag before the command that is not a
 * global one (oclif's own answer is "command -l not found", several lines, exit 2); undefined when the
 * first argument is a command, help or version, or absent, or when there is no manifest.
 * normaliseArgv has already moved the global flags after the command, so a flag still in front is unknown.
 */
export function unknownCommandMessage(argv: readonly string[], manifestUrl: URL): string | undefined {
  const [first] = argv;
  if (first === undefined || ROOT_FLAGS.has(first) || first === 'help') return undefined;
  const manifest = readManifest(manifestUrl);
  if (!manifest || first in manifest.commands) return undefined;
  const known = Object.keys(manifest.commands).sort().join(', ');
  if (first.startsWith('-')) {
    const flag = first.replace(/=.*$/s, '');
    const global = /^--(config|debug|redis-url|log-level)$/.test(flag);
    return global
      ? `jtm : no command given after ${flag}; commands: ${known} (jtm --help)`
      : `jtm : unknown flag ${flag} before the command; global flags: ${GLOBALS}; commands: ${known} (jtm --help)`;
  }
  return `jtm ${first}: unknown command; commands: ${known} (jtm --help)`;
}
