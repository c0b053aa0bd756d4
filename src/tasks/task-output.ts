import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

import { forTask, type JtmContext } from '../context.js';
import { permissionCode, TaskNotFoundError } from '../errors.js';
import { isFinal } from './status.js';

/**
 * A task's stdout, as bytes (binary-safe: nothing is decoded). After the task has ended: its stdout file
 * when that file is readable here and has the size its worker recorded (the file is authoritative and
 * complete), else the Redis copy, which holds the last JTM_OUTPUT_TAIL_BYTES while the task runs and the last
 * JTM_OUTPUT_KEEP_BYTES once it has ended (one log line on stderr says when earlier output was dropped from it). While it runs: the Redis copy, which its worker fills from the
 * file a few times a second; with `follow`, new output until the task has ended.
 */
export async function streamTaskOutput(
  anyShard: JtmContext,
  id: number,
  write: (chunk: Buffer) => void | Promise<void>,
  follow: boolean,
): Promise<void> {
  const ctx = forTask(anyShard, id);
  const record = await ctx.tasks.get(id);
  if (!record) throw new TaskNotFoundError(id);
  const copied = isFinal(record.status) ? await copyFile(record.stdout_file, record, write) : false;
  if (copied === true) return;
  // The file is on this host with the recorded size but this user may not read it (another user's worker, a
  // umask of 077): said so, rather than sending the reader to that file (adversary 12 D6).
  const whole =
    typeof copied === 'string'
      ? `the whole output is in ${record.stdout_file ?? "the task's stdout file"}, which this user cannot read (${copied})`
      : "the whole output is in the task's stdout file";
  const key = ctx.keys.taskOutput(id);
  let last: string | undefined;
  /** The output offset up to which this reader has written, and the run (token) that offset is of. */
  let pos = 0;
  let run: string | undefined = record.run_token;
  /** Whether anything was written (the start of the output warned of once). */
  let started = false;
  const dropped = (off: number): void => {
    if (off > 0)
      ctx.logger.warn(
        { task: id, dropped_bytes: off },
        `the first ${off} bytes of output are not kept in Redis (JTM_OUTPUT_TAIL_BYTES, JTM_OUTPUT_KEEP_BYTES once ended): ${whole}`,
      );
  };
  const behind = (bytes: number, why: string): void =>
    ctx.logger.warn(
      { task: id, dropped_bytes: bytes },
      `${bytes} bytes of output went by while this reader was behind (${why}): ${whole}`,
    );
  // Once a run has ended its live stream is replaced by the kept tail (Keys.taskOutputKept): what of it lies
  // past what was written here, when it is the run this reader follows (an older run's tail, while a new run
  // has not streamed yet, is not). False: nothing kept.
  const writeKept = async (): Promise<boolean> => {
    const tail = await readKeptOutput(ctx, id, run);
    if (!tail) return false;
    const { data: kept, start } = tail;
    if (!started) dropped(start);
    else if (start > pos) behind(start - pos, 'only the last JTM_OUTPUT_KEEP_BYTES are kept once a run ends');
    started = true;
    const from = Math.max(0, pos - start);
    if (from < kept.length) await write(kept.subarray(from));
    pos = start + kept.length;
    return true;
  };
  const noneKept = (): void => {
    if (!started && (record.output_bytes ?? 0) > 0)
      ctx.logger.warn(
        { task: id, dropped_bytes: record.output_bytes },
        `its ${record.output_bytes} bytes of output are in the task's stdout file, not readable here, and none is kept in Redis (JTM_OUTPUT_KEEP_BYTES)`,
      );
  };
  for (;;) {
    // Following: the status and the run, in one read before the output's. A final status read first means that
    // everything of the output (written before it) is read next.
    let status: number | undefined;
    if (follow) {
      const [statusText, runText] = await ctx.redis.hmget(ctx.keys.task(id), 'status', 'run_token');
      status = statusText === null ? undefined : Number(statusText);
      // A new run starts its output over (its start dropped the earlier run's stream and tail): from its own
      // start, with nothing of the earlier run's offsets. Bytes already written cannot be taken back: say so.
      const now = runText ?? undefined;
      if (now !== undefined && now !== run) {
        if (run !== undefined && started)
          ctx.logger.warn(
            { task: id },
            'the task was started again: its output starts over here; what was printed before came from an earlier attempt',
          );
        run = now;
        pos = 0;
        last = undefined;
      }
    }
    const entries = await ctx.redis.xrangeBuffer(key, last === undefined ? '-' : `(${last}`, '+');
    for (const [entryId, fields] of entries) {
      const data = field(fields, 'data');
      const off = Number(field(fields, 'off')?.toString('latin1') ?? 0);
      if (!started) dropped(off);
      // The stream keeps its last JTM_OUTPUT_TAIL_BYTES: entries trimmed between two reads are a gap, said with
      // its size (a fast writer's follower printed 3 MB of 105 and accounted for 41 MB: adversary 10 K9).
      else if (off > pos) behind(off - pos, 'the live copy keeps the last JTM_OUTPUT_TAIL_BYTES');
      started = true;
      if (data) await write(data);
      pos = off + (data?.length ?? 0);
      last = entryId.toString('latin1');
    }
    if (!follow) {
      // Nothing streaming: an ended run's kept tail (final, or given back and waiting to run again).
      if (last === undefined && !(await writeKept()) && isFinal(record.status)) noneKept();
      return;
    }
    // A run that ended while this followed it (given back, or about to be recorded final): the end of its
    // output is in the kept tail now, no longer in the stream.
    if (entries.length === 0) await writeKept();
    if (status === undefined || isFinal(status)) {
      if (isFinal(status ?? record.status)) noneKept();
      return;
    }
    await sleep(500);
  }
}

/**
 * The kept tail of a task's ended run (Keys.taskOutputKept) and where it starts in the output, or undefined:
 * none, or another run's than `run` (the run token a reader follows; undefined: any).
 */
export async function readKeptOutput(
  ctx: JtmContext,
  id: number,
  run: string | undefined,
): Promise<{ data: Buffer; start: number } | undefined> {
  const [data, off, keptRun] = await ctx.redis.hmgetBuffer(ctx.keys.taskOutputKept(id), 'data', 'off', 'run');
  if (!data) return undefined;
  if (run !== undefined && keptRun && keptRun.toString('latin1') !== run) return undefined;
  return { data, start: Number(off?.toString('latin1') ?? 0) };
}

function field(fields: Buffer[], name: string): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i]?.toString('latin1') === name) return fields[i + 1];
  }
  return undefined;
}

/**
 * Writes the task's stdout file when it is here and whole: true; false when it is not (the Redis copy serves);
 * the error code when it is here, whole, but unreadable to this user.
 */
async function copyFile(
  path: string | undefined,
  ended: { output_bytes?: number; output_mtime?: number },
  write: (chunk: Buffer) => void | Promise<void>,
): Promise<boolean | string> {
  const { output_bytes: bytes, output_mtime: mtime } = ended;
  if (!path || bytes === undefined) return false;
  let chunks: AsyncIterable<unknown>;
  try {
    const st = await stat(path);
    // Rewritten since (another task naming the same file, after this one): the Redis copy is this task's.
    if (!st.isFile() || st.size !== bytes || (mtime !== undefined && st.mtimeMs !== mtime)) return false;
    if (bytes === 0) return true;
    chunks = createReadStream(path, { end: bytes - 1 });
  } catch (err) {
    return permissionCode(err) ?? false;
  }
  // A failure of `write` is the caller's (its reader gone, a full disk), never a reason to fall back to the
  // Redis copy: that wrote the output's tail after the part already written.
  let wrote = false;
  try {
    for await (const chunk of chunks) {
      wrote = true;
      await write(chunk as Buffer);
    }
  } catch (err) {
    if (wrote) throw err;
    return permissionCode(err) ?? false;
  }
  return true;
}
