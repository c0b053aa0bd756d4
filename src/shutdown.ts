import type { Logger } from './logger.js';

/**
 * The one owner of process signals. The first SIGTERM/SIGINT asks for a graceful stop (running tasks
 * get their grace period); a second one asks for an immediate stop. SIGUSR1 is Slurm's early warning
 * before walltime (`sbatch --signal`): drain. SIGPIPE is left alone (stderr to a closed pipe must not kill a worker mid-task).
 */
export interface ShutdownHandlers {
  stop: (force: boolean) => Promise<void>;
  drain?: () => void;
}

export function installShutdown(handlers: ShutdownHandlers, logger: Logger): () => void {
  let stopping = false;
  const onStop = (signal: NodeJS.Signals): void => {
    const force = stopping;
    stopping = true;
    logger.info({ signal, force }, force ? 'second signal: stopping now' : 'stopping gracefully');
    handlers.stop(force).catch(err => logger.error({ err }, 'error while stopping'));
  };
  const onDrain = (): void => {
    logger.info('SIGUSR1: draining');
    handlers.drain?.();
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGUSR1', onDrain);
  return () => {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGUSR1', onDrain);
  };
}

/**
 * After a daemon has stopped and released what it could, make sure the process ends: a client still trying
 * to reach an unreachable Redis would otherwise keep it alive. Unreferenced, so a clean exit is not delayed.
 */
export function exitSoonAfterStop(graceMs = 2000): void {
  setTimeout(() => process.exit(process.exitCode ?? 0), graceMs).unref();
}
