// Writes oclif.manifest.json so that a command's start-up loads only that command's module.
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Config } from '@oclif/core';

const root = fileURLToPath(new URL('..', import.meta.url));
// A stale manifest would be read back instead of the commands themselves.
rmSync(new URL('../oclif.manifest.json', import.meta.url), { force: true });
const config = await Config.load({ root });
const plugin = config.plugins.get(config.pjson.name);
if (!plugin) throw new Error('root plugin not found');
writeFileSync(new URL('../oclif.manifest.json', import.meta.url), JSON.stringify(plugin.manifest));
console.error(`oclif.manifest.json: ${Object.keys(plugin.manifest.commands).length} commands`);
