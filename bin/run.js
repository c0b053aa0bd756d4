#!/usr/bin/env node
// Entry point of `jtm` and of the legacy `jtm-<command>` names: translate the original's command line,
// then run a plain invocation of a hot command (isalive, status, submit, kill) on the fast path, which
// does not load oclif; anything else (help, --json, errors in the argv, other commands) goes to oclif.
import { statSync } from 'node:fs';
import { basename } from 'node:path';

const manifest = new URL('../oclif.manifest.json', import.meta.url);
const bundle = new URL('../dist/fast/main.js', import.meta.url);

/** The esbuild bundle (npm run build), unless it is missing or older than the manifest (tsc-only build). */
function fastModule() {
  const mtime = url => statSync(url, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  return mtime(bundle) >= mtime(manifest) ? bundle.href : '../dist/src/cli/fast/main.js';
}

const { normaliseArgv, runFastPath, unknownCommandMessage } = await import(fastModule());
const args = normaliseArgv(basename(process.argv[1] ?? 'jtm'), process.argv.slice(2));
const unknown = unknownCommandMessage(args, manifest);
if (unknown) {
  process.stderr.write(`${unknown}\n`);
  process.exitCode = 1;
} else if (!(await runFastPath(args, manifest))) {
  const { execute } = await import('@oclif/core');
  await execute({ args, dir: import.meta.url });
}
