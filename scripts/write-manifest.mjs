// Writes oclif.manifest.json so that a command's start-up loads only that command's module. Each option
// flag also gets `jtm: { value, min, max }` (oclif's manifest says only "option"): the fast path of
// bin/run.js (src/cli/fast/) parses the hot commands from this file, so the classes stay the one source.
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Config, Flags } from '@oclif/core';

const root = fileURLToPath(new URL('..', import.meta.url));
// A stale manifest would be read back instead of the commands themselves.
rmSync(new URL('../oclif.manifest.json', import.meta.url), { force: true });
const config = await Config.load({ root });
const plugin = config.plugins.get(config.pjson.name);
if (!plugin) throw new Error('root plugin not found');
const manifest = plugin.manifest;

const INTEGER_PARSE = Flags.integer().parse;
const STRING_PARSE = Flags.string().parse.toString();

/** How the value of an option flag is parsed: what the fast path can reproduce, or `custom` (it must not). */
function valueKind(flag) {
  if (flag.parse === INTEGER_PARSE) return { value: 'integer', min: flag.min, max: flag.max };
  if (flag.parse?.toString() === STRING_PARSE) return { value: 'string' };
  return { value: 'custom' };
}

for (const [id, cached] of Object.entries(manifest.commands)) {
  const cmd = await config.findCommand(id, { must: true }).load();
  const flags = { ...cmd.baseFlags, ...cmd.flags };
  for (const [name, flag] of Object.entries(cached.flags)) {
    if (flag.type === 'option') flag.jtm = valueKind(flags[name] ?? {});
  }
}
writeFileSync(new URL('../oclif.manifest.json', import.meta.url), JSON.stringify(manifest));
console.error(`oclif.manifest.json: ${Object.keys(manifest.commands).length} commands`);
