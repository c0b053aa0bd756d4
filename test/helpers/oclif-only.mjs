// bin/run.js without its fast path: every invocation goes through oclif. The fast path's equivalence
// tests run each command line both ways and compare stdout, stderr and the exit code.
import { basename } from 'node:path';

import { execute } from '@oclif/core';

import { normaliseArgv } from '../../dist/src/cli/argv.js';

await execute({
  args: normaliseArgv(basename(process.argv[1] ?? 'jtm'), process.argv.slice(2)),
  dir: new URL('../../bin/run.js', import.meta.url).href,
});
