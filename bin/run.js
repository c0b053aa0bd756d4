#!/usr/bin/env node
// Entry point of `jtm` and of the legacy `jtm-<command>` names: translate the original's command line,
// then run a plain invocation of a hot command (isalive, status, submit, kill, worker) on the fast path,
// which does not load oclif; anything else (help, --json, errors in the argv, other commands) goes to oclif.
import { fork } from 'node:child_process';
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

// Before anything else: Node opens its inspector (a debugger on 127.0.0.1:9229 that any local user may connect to
// and run code as this user) on a SIGUSR1 that no listener takes. JTM's daemons drain on it once their handlers
// exist (src/shutdown.ts), which is seconds into a worker's start on a loaded node: a SIGUSR1 before then opened
// the inspector and the drain was lost (adversary 38 H1). Taken from here on, and noted for those handlers. (What
// comes before this line is Node's own start; src/shutdown.ts closes an inspector opened then.)
process.on('SIGUSR1', () => {
  globalThis[Symbol.for('jtm.earlyUsr1')] = true;
});

const manifest = new URL('../oclif.manifest.json', import.meta.url);
const bundle = new URL('../dist/fast/main.js', import.meta.url);
// The same fast path as one CommonJS file, run with a V8 code cache (src/cli/fast/code-cache.ts) for the hot
// commands: Node 20 caches compiled code for scripts only, not ES modules. Other commands (oclif's) take the
// small ES entry: the whole bundle would cost them more than its cache saves.
const cjsBundle = new URL('../dist/fast/main.cjs', import.meta.url);
const CACHED = new Set(['isalive', 'status', 'submit', 'kill', 'worker']);
/** When a worker writes its code cache: its start-up and first task compiled, long before it ends. */
const SAVE_AFTER_MS = 2000;

const mtime = url => statSync(url, { throwIfNoEntry: false })?.mtimeMs ?? 0;
/** An esbuild bundle (npm run build), unless it is missing or older than the manifest (tsc-only build). */
const built = url => mtime(url) >= mtime(manifest);

/** The hot command's name, roughly: the choice of bundle is only about speed (both run every command). */
function commandName() {
  const name = basename(process.argv[1] ?? '');
  return name.startsWith('jtm-') ? name.slice(4) : process.argv[2];
}

/**
 * A worker's first task waits for its pty host, a Node process of its own (src/worker/pty-host.ts): forked here,
 * before this process compiles anything, its start overlaps all of the worker's. Only for the bundle's host
 * (the one the bundle's worker would fork) and not for `-wt dynamic` without a job id (it asks Slurm for an
 * allocation, runs no worker here). Its environment is empty: the host reads none, and gets its tasks' with
 * the worker's `init`; no secret of this one reaches it. A host that is never adopted (a bad flag, --help)
 * leaves when this process does (it follows its IPC channel). Adopted by src/worker/run-in-pty.ts.
 */
async function forkPtyHostEarly(argv) {
  const host = new URL('../dist/fast/pty-host.js', import.meta.url);
  const dynamic = argv.some(a => a === 'dynamic' || /^--?(wt|worker_type)=dynamic$/.test(a));
  const jobId = argv.some(a => /^(-j|--slurm_job_id)(=|$)/.test(a));
  if ((dynamic && !jobId) || argv.includes('--help') || !built(host)) return;
  try {
    const { PTY_HOST_EXEC_ARGV } = await import('../dist/src/worker/pty-host-argv.js');
    const child = fork(host, [], {
      execArgv: [...process.execArgv, ...PTY_HOST_EXEC_ARGV],
      env: {},
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
    });
    child.on('error', () => {}); // best effort: the worker forks its own if this one is not there
    child.unref();
    child.channel?.unref();
    globalThis[Symbol.for('jtm.earlyPtyHost')] = child;
  } catch {
    // best effort, as above
  }
}

/** Commands that read no path of their own: they may run from `/` when the current directory is gone. */
const NO_PATHS = new Set([
  'isalive',
  'status',
  'kill',
  'check-worker',
  'check-manager',
  'pools',
  'logs',
  'remove-pool',
]);

/**
 * Started in a directory removed since: one line for a command that needs it — a task's working directory, an
 * output, a log directory, a configuration file given relative to it (it printed Node's `ENOENT … uv_cwd`, or
 * would have read the path from `/`); the others run from `/`, without the line oclif printed outside its JSON
 * logs.
 */
function removedCwdMessage(command) {
  try {
    process.cwd();
    return undefined;
  } catch (err) {
    if (err?.code !== 'ENOENT') return undefined;
  }
  const relative = p => typeof p === 'string' && p !== '' && !p.startsWith('/');
  const argv = process.argv.slice(2);
  const configArg = argv.findIndex(a => a === '--config' || a.startsWith('--config='));
  const config =
    configArg < 0
      ? undefined
      : argv[configArg].includes('=')
        ? argv[configArg].slice(9)
        : argv[configArg + 1];
  const paths = [config, process.env.JTM_CONFIG_FILE];
  if (!NO_PATHS.has(command) || paths.some(relative))
    return `jtm ${command}: the current directory no longer exists (it was removed): cd to one that does`;
  process.chdir('/');
  return undefined;
}

let saveCodeCache;
async function fastModule() {
  const command = commandName();
  if (command === 'worker' && built(cjsBundle)) await forkPtyHostEarly(process.argv.slice(2));
  if (CACHED.has(command) && built(cjsBundle)) {
    const { loadWithCodeCache } = await import('../dist/src/cli/fast/code-cache.js');
    // One cache per command: each holds what its own runs compile.
    const loaded = loadWithCodeCache(fileURLToPath(cjsBundle), command);
    if (loaded.cache !== 'accepted') {
      saveCodeCache = loaded.save;
      setTimeout(loaded.save, SAVE_AFTER_MS).unref();
    }
    return loaded.exports;
  }
  return import(built(bundle) ? bundle.href : '../dist/src/cli/fast/main.js');
}

/**
 * stdout that cannot be written (a full disk, `> /dev/full`): one line on stderr and exit code 1 (isalive keeps
 * its answer), instead of
 * the uncaught exception oclif's listener throws (a stack trace); a reader that closed the pipe (EPIPE,
 * `| head`) ends the output quietly. Installed again after oclif is loaded, which adds its listener then.
 */
function guardStdout(command) {
  process.stdout.removeAllListeners('error');
  let said = false;
  process.stdout.on('error', err => {
    if (err?.code === 'EPIPE') return;
    if (!said) process.stderr.write(`jtm ${command}: cannot write the output: ${err?.code ?? err}\n`);
    said = true;
    // isalive's answer is its exit code (Cromwell: anything but 0 is "not alive"): a full disk under its stdout
    // must not turn a running task into a dead one.
    if (command !== 'isalive') process.exitCode = 1;
  });
}

/** Commands that run until stopped and log JSON lines (pino) on stderr. */
const DAEMONS = new Set(['worker', 'manager', 'dashboard']);

/**
 * An exception nothing caught (thrown in a socket's handler: the Redis client parsing a reply it did not expect
 * from a server that only looks like Redis) printed Node's stack trace, many lines on stderr (adversary 24 F5):
 * said in the command's one line (a daemon: its JSON line), exit 1 as for any unexpected error.
 */
function guardUncaught(command) {
  process.on('uncaughtException', err => {
    const message = String(err?.message ?? err).split('\n')[0];
    const line = DAEMONS.has(command)
      ? JSON.stringify({
          level: 60,
          time: Date.now(),
          msg: `uncaught error: exiting: ${message}`,
          err: { type: err?.name, message: err?.message, stack: err?.stack },
        })
      : `jtm ${command}: unexpected error: ${message}`;
    process.stderr.write(`${line}\n`);
    process.exit(1);
  });
}

const { normaliseArgv, runFastPath, unknownCommandMessage } = await fastModule();
const args = normaliseArgv(basename(process.argv[1] ?? 'jtm'), process.argv.slice(2));
guardStdout(args[0] ?? '');
guardUncaught(args[0] ?? '');
const unknown = unknownCommandMessage(args, manifest);
const cwdGone = unknown ? undefined : removedCwdMessage(args[0] ?? '');
if (unknown || cwdGone) {
  process.stderr.write(`${unknown ?? cwdGone}\n`);
  process.exitCode = 1;
} else if (await runFastPath(args, manifest)) {
  // A run that failed early (bad input) compiled little: the cache waits for a successful one.
  if (saveCodeCache) process.once('exit', code => code === 0 && saveCodeCache());
} else {
  const { execute } = await import('@oclif/core');
  guardStdout(args[0] ?? '');
  await execute({ args, dir: import.meta.url });
}
