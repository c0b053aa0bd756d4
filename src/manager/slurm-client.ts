import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import { listActiveJobs, runSlurmCommand, slurmMessage } from '../slurm/slurm-commands.js';

/**
 * Each running manager, as the others see it, and whether its own Slurm client works. A manager whose client
 * fails (sbatch or squeue not on its PATH, SLURM_CONF naming a missing file, no route to slurmctld) took the
 * site-wide provisioning lock at every pass, counted its own errors as the pool's sbatch failures and failed the
 * pool's calls (rc 126) while a healthy manager beside it never got to sbatch (adversary 39 F1). Now such a
 * manager leaves provisioning to another live manager whose client is not known to fail; when there is none,
 * it provisions as before (its failures count: a site without a working client fails its calls).
 */
export interface ManagerPresence {
  host: string;
  pid: number;
  /** When the manager last said it runs (ms). */
  seen: number;
  /** What its Slurm client said when it last failed, while it fails. */
  slurm_error?: string;
  slurm_failing_since?: number;
}

/** How often a running manager says so, and how long after its last word it counts as gone. */
export const PRESENCE_BEAT_MS = 5_000;
export const PRESENCE_WINDOW_MS = 3 * PRESENCE_BEAT_MS;
/** How often a manager whose client fails tries it again, outside any lock and any sweep. */
export const CLIENT_PROBE_EVERY_MS = 30_000;
/** How long the probe's squeue may take. */
const PROBE_TIMEOUT_MS = 15_000;

/** This process's id among the managers, and what its Slurm client last did (one client per process). */
const self = {
  id: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
  failure: undefined as { message: string; since: number } | undefined,
  probedAt: 0,
  probing: undefined as Promise<void> | undefined,
};

/** The failure of this process's Slurm client, while it fails. */
export function slurmClientFailure(): { message: string; since: number } | undefined {
  return self.failure;
}

/** Says in Redis that this manager runs, with its client's state; forgets managers silent past the window. */
export async function writePresence(ctx: JtmContext, now = Date.now()): Promise<void> {
  const me: ManagerPresence = {
    host: hostname(),
    pid: process.pid,
    seen: now,
    ...(self.failure ? { slurm_error: self.failure.message, slurm_failing_since: self.failure.since } : {}),
  };
  await ctx.redis.hset(ctx.keys.managerPresence, self.id, JSON.stringify(me));
  const stale = [...(await readPresence(ctx))].filter(([, p]) => now - p.seen > PRESENCE_WINDOW_MS);
  if (stale.length > 0) await ctx.redis.hdel(ctx.keys.managerPresence, ...stale.map(([id]) => id));
}

/** Every manager's record, by id (unreadable ones left out). */
export async function readPresence(ctx: JtmContext): Promise<Map<string, ManagerPresence>> {
  const out = new Map<string, ManagerPresence>();
  for (const [id, raw] of Object.entries(await ctx.redis.hgetall(ctx.keys.managerPresence))) {
    try {
      out.set(id, JSON.parse(raw) as ManagerPresence);
    } catch {
      // Not ours to read: left for its writer to replace.
    }
  }
  return out;
}

/** The live managers whose Slurm client fails (check-manager shows them). */
export async function managersWithFailingClient(
  ctx: JtmContext,
  now = Date.now(),
): Promise<ManagerPresence[]> {
  return [...(await readPresence(ctx)).values()].filter(
    p => now - p.seen <= PRESENCE_WINDOW_MS && p.slurm_error !== undefined,
  );
}

/** Says that this manager runs, every PRESENCE_BEAT_MS, until stopped (then its record is removed). */
export function startPresence(ctx: JtmContext): { stop(): Promise<void> } {
  const beat = (): void => {
    writePresence(ctx).catch(err =>
      ctx.logger.debug({ err: toError(err) }, 'could not say that this manager runs'),
    );
  };
  beat();
  const timer = setInterval(beat, PRESENCE_BEAT_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await ctx.redis.hdel(ctx.keys.managerPresence, self.id).catch(() => 0);
    },
  };
}

/** Whether another manager runs whose Slurm client is not known to fail. */
export async function healthyPeerAlive(ctx: JtmContext, now = Date.now()): Promise<boolean> {
  for (const [id, p] of await readPresence(ctx))
    if (id !== self.id && now - p.seen <= PRESENCE_WINDOW_MS && p.slurm_error === undefined) return true;
  return false;
}

/**
 * This manager's Slurm client failed (isSlurmClientFault): noted, said once in its log and in its presence.
 * Returns whether another live manager should provision instead (healthyPeerAlive).
 */
export async function clientFailed(ctx: JtmContext, err: unknown, now = Date.now()): Promise<boolean> {
  const message = toError(err).message;
  if (!self.failure) {
    self.failure = { message, since: now };
    self.probedAt = now;
    ctx.logger.error(
      { err: message },
      "this manager's Slurm client fails: it leaves provisioning to the other managers while one runs",
    );
  } else self.failure.message = message;
  await writePresence(ctx, now).catch(() => undefined);
  return healthyPeerAlive(ctx, now);
}

/** A Slurm command of this manager reached Slurm (an answer, or Slurm's own refusal): its client works. */
export async function clientWorks(ctx: JtmContext): Promise<void> {
  if (!self.failure) return;
  self.failure = undefined;
  ctx.logger.info("this manager's Slurm client works again: it provisions again");
  await writePresence(ctx).catch(() => undefined);
}

/**
 * Whether this manager leaves provisioning to another: its client fails and a manager whose client is not known
 * to fail runs. Meanwhile its client is tried again every CLIENT_PROBE_EVERY_MS, in the background (no lock held,
 * no sweep waiting), so that a mended host provisions again.
 */
export async function leavesProvisioning(ctx: JtmContext, now = Date.now()): Promise<boolean> {
  if (!self.failure) return false;
  if (!(await healthyPeerAlive(ctx, now))) return false;
  if (now - self.probedAt >= CLIENT_PROBE_EVERY_MS && !self.probing) {
    self.probedAt = now;
    self.probing = probeClient(ctx).finally(() => (self.probing = undefined));
  }
  return true;
}

/** sbatch and squeue both start and read their configuration, and squeue reaches the controller. */
async function probeClient(ctx: JtmContext): Promise<void> {
  try {
    const version = await runSlurmCommand('sbatch', ['--version'], { timeoutMs: PROBE_TIMEOUT_MS });
    if (version.code !== 0) throw new Error(`sbatch failed: ${slurmMessage(version.stderr)}`);
    await listActiveJobs([], PROBE_TIMEOUT_MS);
    await clientWorks(ctx);
  } catch (err) {
    if (self.failure) self.failure.message = toError(err).message;
    await writePresence(ctx).catch(() => undefined);
  }
}
