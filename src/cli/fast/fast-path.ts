import { jsonRequestedByEnv, workerEnvironment, type LogLevel } from '../../config.js';
import type * as Context from '../../context.js';
import type { JtmContext } from '../../context.js';
import { captureStrayOutput, createLogger, type Logger } from '../../logger.js';
import { forkPtyHost } from '../../worker/run-in-pty.js';
import { redisLocation } from '../../redis/location.js';
import { reportError } from '../error-report.js';
import type { CommandSession } from '../session.js';
import {
  answerUnknownForConfig,
  CLIENT_LOG_LEVEL,
  isaliveAnswersUnknown,
  resolveSettings,
} from '../settings.js';
import { runsWorkerHere } from '../worker-here.js';
import { readManifest, type Manifest } from './manifest.js';
import { parsePlainArgv, type PlainInvocation } from './parse-argv.js';

type Body = (s: CommandSession, input: PlainInvocation) => Promise<unknown>;

export interface HotCommand {
  /** The command body, loaded only for this command (submit and kill need bullmq, isalive does not). */
  load: () => Promise<Body>;
  /** Whether the parsed input is complete without oclif's extras (a missing id makes oclif read stdin). */
  complete: (input: PlainInvocation) => boolean;
  /** The command's default log level (its class's defaultLogLevel), when not the client commands' one. */
  logLevel?: LogLevel;
  /**
   * Started first, before the command's modules (and ioredis) are loaded: work of another process that the
   * command will wait for. Best effort: the command starts it again if this did not.
   */
  early?: (input: PlainInvocation) => void;
}

const hasTaskId = (input: PlainInvocation): boolean =>
  input.flags['task_id'] !== undefined || input.args['id'] !== undefined;

// The parsed values have the types of the command classes' flags: the manifest they come from is
// generated from those classes (scripts/write-manifest.mjs), hence the casts to the bodies' inputs.
const HOT: Readonly<Record<string, HotCommand>> = {
  isalive: {
    load: async () => (await import('../actions/isalive.js')).runIsAlive,
    complete: hasTaskId,
  },
  status: {
    load: async () => (await import('../actions/status.js')).runStatus,
    complete: hasTaskId,
  },
  kill: {
    load: async () => (await import('../actions/kill.js')).runKill as unknown as Body,
    complete: hasTaskId,
  },
  submit: {
    load: async () => (await import('../actions/submit.js')).runSubmit,
    complete: () => true,
  },
  // Not a hot command for Cromwell, but the batch script's: a Slurm allocation's first task waits for it.
  worker: {
    load: async () => (await import('../actions/worker.js')).runWorkerCommand as unknown as Body,
    complete: () => true,
    logLevel: 'info',
    // The pty host is a Node process of its own that the first task waits for: forked now, its start overlaps
    // all of the worker's own (loading BullMQ, connecting, registering, claiming).
    early: input => {
      if (runsWorkerHere(input.flags)) forkPtyHost(workerEnvironment());
    },
  },
};

/** A command line the fast path runs: a hot command, parsed. */
export interface FastInvocation {
  id: string;
  hot: HotCommand;
  input: PlainInvocation;
}

/** What `argv` (after normaliseArgv) is for the fast path: a plain hot invocation, or undefined (oclif's). */
export function planFastPath(
  argv: readonly string[],
  manifest: Manifest | undefined,
): FastInvocation | undefined {
  const [id, ...rest] = argv;
  const hot = id === undefined ? undefined : HOT[id];
  const cmd = id === undefined ? undefined : manifest?.commands[id];
  if (!hot || !cmd || id === undefined) return undefined;
  const input = parsePlainArgv(cmd, rest);
  return input && hot.complete(input) ? { id, hot, input } : undefined;
}

/**
 * Runs a plain invocation of a hot command (what Cromwell runs for every task, and the worker that a Slurm
 * batch script starts) without loading oclif:
 * flags are parsed from oclif.manifest.json and the same bodies run as in the command classes, with the
 * same output, stderr line and exit code. Returns false, having done nothing, for anything else.
 */
export async function runFastPath(argv: readonly string[], manifestUrl: URL): Promise<boolean> {
  if (argv[0] === undefined || !(argv[0] in HOT) || jsonRequestedByEnv()) return false;
  const plan = planFastPath(argv, readManifest(manifestUrl));
  if (!plan) return false;
  try {
    plan.hot.early?.(plan.input);
  } catch {
    // best effort (see HotCommand.early)
  }
  await runHot(plan);
  return true;
}

/** The context module with ioredis, loaded on first use rather than with this one: HotCommand.early runs before it. */
const contextModule = (): Promise<typeof Context> => import('../../context.js');

/** BaseCommand's init → run → catch → finally, without oclif. */
async function runHot({ id, hot, input }: FastInvocation): Promise<void> {
  let ctx: JtmContext | undefined;
  let logger: Logger | undefined;
  let where: string | undefined;
  try {
    const { config, level, ignored } = resolveSettings(input.flags, hot.logLevel ?? CLIENT_LOG_LEVEL, id);
    where = redisLocation(config);
    const log = await createLogger(level, { cmd: id });
    logger = log;
    captureStrayOutput(log, config.logRepeatIntervalMs);
    for (const why of ignored) log.warn(`${why}: ignored (${id} does not read it)`);
    const session: CommandSession = {
      config,
      logger: log,
      json: false,
      print: text => void process.stdout.write(text),
      context: async () => (ctx ??= await (await contextModule()).openContext(config, log, 'client')),
      resetContext: async () => {
        const old = ctx;
        ctx = undefined;
        if (old) await (await contextModule()).closeContext(old);
      },
    };
    const body = await hot.load();
    await body(session, input);
  } catch (err) {
    if (
      id === 'isalive' &&
      logger === undefined &&
      isaliveAnswersUnknown(input.flags, err, {
        flag: input.flags['task_id'] as string | undefined,
        arg: input.args['id'] as string | undefined,
      })
    ) {
      answerUnknownForConfig(err, false);
      return;
    }
    const report = reportError(err, id, where);
    process.stderr.write(report.line);
    if (report.unexpected) logger?.debug({ err: report.unexpected }, 'unexpected error');
    process.exitCode = report.exitCode;
  } finally {
    if (ctx) await (await contextModule()).closeContext(ctx);
  }
}
