#!/usr/bin/env node
// Entry point of `jtm` and of the legacy `jtm-<command>` names: translate the original's command line, then oclif.
import { basename } from 'node:path';

import { execute } from '@oclif/core';

import { normaliseArgv } from '../dist/src/cli/argv.js';

await execute({
  args: normaliseArgv(basename(process.argv[1] ?? 'jtm'), process.argv.slice(2)),
  dir: import.meta.url,
});
