/**
 * What bin/run.js loads before anything else: the legacy argv translation and the fast path. esbuild
 * bundles this entry with ioredis into dist/fast/ (scripts/build-fast.mjs), so that a cold
 * `jtm isalive` resolves a handful of files instead of hundreds.
 */
export { normaliseArgv } from '../argv.js';
export { runFastPath } from './fast-path.js';
export { unknownCommandMessage } from './unknown-command.js';
