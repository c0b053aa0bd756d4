import { readManifest } from './manifest.js';

/**
 * The one-line error for a command that does not exist (oclif's own is several lines, exit 2), or undefined
 * when the first argument is a command, a flag (help, version) or absent, or when there is no manifest.
 */
export function unknownCommandMessage(argv: readonly string[], manifestUrl: URL): string | undefined {
  const [first] = argv;
  if (first === undefined || first.startsWith('-') || first === 'help') return undefined;
  const manifest = readManifest(manifestUrl);
  if (!manifest || first in manifest.commands) return undefined;
  const known = Object.keys(manifest.commands).sort().join(', ');
  return `jtm ${first}: unknown command; commands: ${known} (jtm --help)`;
}
