import { checkLeaseSettings, type Config } from '../../config.js';
import { closeContext, openContext, type JtmContext } from '../../context.js';
import type { DynamicWorkerRequest } from '../../slurm/submit-workers.js';
import type { CommandSession } from '../session.js';
import { runsWorkerHere } from '../worker-here.js';
import { parseDurationFlag, runWorker, type WorkerFlags } from '../worker-cli.js';

/** Every `jtm worker` flag: the worker's own and what `-wt dynamic` asks of Slurm. */
export type WorkerCommandFlags = WorkerFlags & DynamicWorkerRequest;

/**
 * `jtm worker`: runs a worker here (manual, or inside a Slurm allocation with -j), or, dynamic without -j,
 * writes and submits the batch script (prints the Slurm job id, or the script with --dry-run). Run by the
 * oclif command and by the fast path of bin/run.js: a worker inside an allocation starts as quickly as the
 * hot client commands (a Slurm task waits for it).
 */
export async function runWorkerCommand(
  s: CommandSession,
  { flags }: { flags: WorkerCommandFlags },
): Promise<unknown> {
  const config: Config = {
    ...s.config,
    ...(flags.log_dir ? { logDir: flags.log_dir } : {}),
    // Empty is refused like every other empty period (a templated `-hb ${HB}` with HB unset ran 2 s silently).
    ...(flags.heartbeat_interval !== undefined
      ? { heartbeatIntervalMs: parseDurationFlag(flags.heartbeat_interval, '-hb', { positive: true }) }
      : {}),
  };
  // Also for -wt dynamic: its batch script passes the heartbeat on to the workers it starts.
  checkLeaseSettings(config, flags.heartbeat_interval);
  if (!runsWorkerHere(flags)) {
    // Loaded only here: a worker does not need the site profiles and batch script code.
    const { submitDynamicWorkers } = await import('../../slurm/submit-workers.js');
    const result = await submitDynamicWorkers(flags, config, s.logger);
    s.print(`${result.output}\n`);
    if (result.exitCode !== 0) process.exitCode = result.exitCode;
    return result;
  }
  // Its own context, on the configuration with this command's overrides, in the worker's connection role.
  let ctx: JtmContext | undefined;
  try {
    return await runWorker(
      async () => (ctx = await openContext(config, s.logger, 'worker')),
      flags,
      config,
      s.logger,
    );
  } finally {
    if (ctx) await closeContext(ctx);
  }
}
