import { open, stat, type FileHandle } from 'node:fs/promises';

import type { JtmContext } from '../context.js';
import { runScript } from '../redis/run-script.js';
import { KEEP_OUTPUT } from '../redis/scripts.js';

const POLL_MS = 250;
/** Largest read, and so largest stream entry. */
const CHUNK_MAX = 64 * 1024;
/** How many of the bytes last read are read again at the next look, to see that the file still holds them. */
const GUARD_BYTES = 64;

/**
 * Follows a task's stdout file while the task runs and copies what it holds to the task's Redis stream, so
 * `jtm logs` can show it from any host. The file is authoritative (the command writes it directly); this
 * only reads it, asynchronously, from the offset it has reached: every ~250 ms while the task runs and once
 * more after it has exited, so the stream ends with the same bytes as the file.
 *
 * The stream holds at most the last `tailBytes` bytes: each entry records its offset in the file (`off`),
 * old entries are trimmed by id (XTRIM MINID) as a running byte count passes the cap, and output that
 * would be trimmed at once is never read (a 150 MB task costs one read of its last part).
 *
 * A file truncated or rewritten while the task runs (`: > file`, another task naming the same file: adversary 23
 * F1, F2) is seen by its size falling below what was read, or by the last bytes read no longer being there (a file
 * that has grown past that point again); it is then read again from its start, as an output started over: the
 * entries from there carry the number of such restarts (`ep`), so that a reader knows that the offsets start
 * again and that what it delivered before is no longer in the file.
 */
export class OutputFollower {
  private offset = 0;
  private handle: FileHandle | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  /** Entries in the stream, oldest first: [id, bytes]. */
  private readonly entries: [string, number][] = [];
  private streamBytes = 0;
  private stopped = false;
  /** The newest entry's bytes, for the tail kept at the end (keepTail). */
  private last: { data: Buffer; offset: number } | undefined;
  /** The last keepBytes of what was read (ends at `offset`): what is kept at the end (keepAsText). */
  private tail: Buffer = Buffer.alloc(0);
  /** The file offset where `tail` ends. */
  private tailEnd = 0;
  /** The file's modification time at the last read (ms, as fs.stat gives it). */
  private mtime: number | undefined;
  /** The last bytes read (at most GUARD_BYTES, ending at `offset`): the file must still hold them there. */
  private guard: Buffer = Buffer.alloc(0);
  /** How many times the file was seen truncated or rewritten (the stream entries' `ep`). */
  private restarts = 0;

  constructor(
    private readonly ctx: JtmContext,
    private readonly taskId: number,
    /** The stdout file when it is a regular file; other targets (FIFO, /dev/null) cannot be followed. */
    private readonly path: string | undefined,
    private readonly tailBytes: number,
    /** What the stream keeps once the task has ended (JTM_OUTPUT_KEEP_BYTES). */
    private readonly keepBytes: number,
    /** The run token of this execution: its tail replaces the stream only while the record still names it. */
    private readonly runToken = '',
  ) {}

  /** Bytes of stdout seen so far (the file's size at the last read). */
  get bytes(): number {
    return this.offset;
  }

  /**
   * The file's modification time at the last read: with its size, what tells `jtm logs` that the file is still
   * this task's (another task naming the same file rewrites it later, perhaps to the same size).
   */
  get mtimeMs(): number | undefined {
    return this.mtime;
  }

  /** Whether the output is followed (a regular file); the rest (a FIFO, a device) is neither kept nor followed. */
  get followed(): boolean {
    return this.path !== undefined;
  }

  start(): void {
    // A new attempt starts its output afresh, as its file does: start-task dropped the previous attempt's
    // stream before this run began (no DEL per task here: a first attempt has no stream to drop).
    if (!this.path) return;
    const tick = (): void => {
      this.timer = undefined;
      this.reading = this.readNew().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, POLL_MS);
      });
    };
    this.timer = setTimeout(tick, POLL_MS);
  }

  /**
   * The task has exited: one last read to the end of the file, then the file is closed and the stream cut to
   * the last keepBytes: kept for the record's whole retention, in Redis's memory, the tail of every chatty task
   * (1 MiB each at the running cap) would add up to gigabytes, and the file holds everything.
   */
  async finish(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.reading;
    if (this.path) await this.readNew();
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
    const newest = this.entries[this.entries.length - 1];
    if (!newest) return;
    try {
      await this.keepAsText(newest[0]);
    } catch (err) {
      this.ctx.logger.debug({ err, task: this.taskId }, 'output copy not kept as text');
      await this.keepTail(this.keepBytes).catch(e =>
        this.ctx.logger.debug({ err: e, task: this.taskId }, 'output copy not cut'),
      );
    }
  }

  /**
   * Replaces the stream by the last keepBytes of the output, with their offset (Keys.taskOutputKept), unless a later
   * attempt has taken the stream over. Only when what was read reaches that far back (a cap below keepBytes
   * skipped the rest): otherwise the stream is cut as before.
   */
  private async keepAsText(newestId: string): Promise<void> {
    const want = Math.min(this.keepBytes, this.offset);
    if (want === 0 || this.tailEnd !== this.offset || this.tail.length < want) {
      await this.keepTail(this.keepBytes);
      return;
    }
    const kept = this.tail.subarray(this.tail.length - want);
    await runScript(
      this.ctx.redis,
      KEEP_OUTPUT,
      [
        this.ctx.keys.taskOutput(this.taskId),
        this.ctx.keys.taskOutputKept(this.taskId),
        this.ctx.keys.task(this.taskId),
      ],
      [
        newestId,
        kept,
        this.ctx.config.taskRetentionMs,
        this.offset - want,
        this.runToken,
        ...(this.restarts > 0 ? [this.restarts] : []),
      ],
    );
    this.entries.length = 0;
    this.streamBytes = 0;
  }

  /**
   * Cuts the stream to its last `bytes` at the task's end. Whole entries go first; when the newest alone is
   * larger (entries are up to 64 KiB), its last `bytes` are written as an entry of their own (with their offset)
   * and every entry before it goes: JTM_OUTPUT_KEEP_BYTES=4096 keeps 4096 bytes, not none. Only this run's own
   * entries are removed (by id), never a later attempt's.
   */
  private async keepTail(bytes: number): Promise<void> {
    const newest = this.entries[this.entries.length - 1];
    if (!newest || this.streamBytes <= bytes) return;
    const key = this.ctx.keys.taskOutput(this.taskId);
    if (newest[1] <= bytes || !this.last) {
      await this.trimTo(bytes);
      return;
    }
    let keptId: string | null = null;
    if (bytes > 0) {
      const tail = this.last.data.subarray(this.last.data.length - bytes);
      keptId = await this.ctx.redis.xadd(
        key,
        '*',
        'data',
        tail,
        'off',
        String(this.last.offset + this.last.data.length - bytes),
        ...this.restartField(),
      );
    }
    // Every entry of this run up to its newest: the threshold is the id just after it.
    const [ms, seq] = newest[0].split('-');
    await this.ctx.redis.xtrim(key, 'MINID', keptId ?? `${ms}-${Number(seq) + 1}`);
    this.entries.length = 0;
    this.streamBytes = 0;
    if (keptId) {
      this.entries.push([keptId, bytes]);
      this.streamBytes = bytes;
    }
  }

  private async readNew(): Promise<void> {
    try {
      // Until there is something to read, one stat per look (most short tasks never print anything).
      const { size, mtimeMs } = this.handle ? await this.handle.stat() : await stat(this.path as string);
      this.mtime = mtimeMs;
      // Nothing new: the last bytes read are still checked (one read of 64 bytes per look), so that a rewrite
      // that keeps the size is seen within a look, not only at the task's end (adversary 28 F6).
      if (size === this.offset && this.guard.length === 0) return;
      this.handle ??= await open(this.path as string, 'r');
      if (size < this.offset || !(await this.stillHolds(this.handle))) await this.startOver(size);
      // What the cap would trim at once is not worth reading.
      if (size - this.offset > this.tailBytes) {
        this.offset = size - this.tailBytes;
        this.guard = Buffer.alloc(0);
      }
      while (this.offset < size) {
        const want = Math.min(CHUNK_MAX, this.tailBytes, size - this.offset);
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await this.handle.read(buf, 0, want, this.offset);
        if (bytesRead === 0) break;
        const data = buf.subarray(0, bytesRead);
        await this.append(data, this.offset);
        this.offset += bytesRead;
        this.guard = lastBytes(this.guard, data);
      }
    } catch (err) {
      // The live copy is best effort (Redis down, file removed): the file and the task are unaffected.
      this.ctx.logger.debug({ err, task: this.taskId }, 'output not streamed');
    }
  }

  /** Whether the file still holds, just before `offset`, the bytes last read there. */
  private async stillHolds(handle: FileHandle): Promise<boolean> {
    const want = this.guard.length;
    if (want === 0) return true;
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await handle.read(buf, 0, want, this.offset - want);
    return bytesRead === want && buf.equals(this.guard);
  }

  /**
   * The file was truncated or rewritten under the follower: its output is read again from its start, as a new
   * series of offsets (the entries' `ep`). What was copied before stays in the stream, in order, for a reader
   * that had not read it yet; the reader says that the output started over.
   */
  private async startOver(size: number): Promise<void> {
    this.restarts++;
    this.ctx.logger.warn(
      { task: this.taskId, file: this.path, read_bytes: this.offset, size },
      "the task's stdout file was truncated or rewritten while it ran: its output is read again from the file's start",
    );
    this.offset = 0;
    this.guard = Buffer.alloc(0);
    this.tail = Buffer.alloc(0);
    this.tailEnd = 0;
    this.last = undefined;
    // An empty entry that says so, whether or not bytes follow: a file emptied with nothing written after
    // (`: > file` as the task's last act) gave no entry of the new series, and a follower ended 0 with bytes the
    // file no longer held (adversary 28 F2).
    const key = this.ctx.keys.taskOutput(this.taskId);
    const id = await this.ctx.redis.xadd(key, '*', 'data', '', 'off', '0', ...this.restartField());
    if (id !== null) this.entries.push([id, 0]);
  }

  /** The entry field that says how many times the output started over (none before the first time). */
  private restartField(): string[] {
    return this.restarts > 0 ? ['ep', String(this.restarts)] : [];
  }

  /** Drops the oldest entries until the stream holds at most `bytes` (whole entries: at most, not exactly). */
  private async trimTo(bytes: number): Promise<void> {
    let first = this.entries[0];
    if (!first || this.streamBytes <= bytes) return;
    while (first && this.streamBytes > bytes) {
      this.entries.shift();
      this.streamBytes -= first[1];
      first = this.entries[0];
    }
    const key = this.ctx.keys.taskOutput(this.taskId);
    if (first) await this.ctx.redis.xtrim(key, 'MINID', first[0]);
  }

  /** Adds to the in-memory tail what was just read at `offset` (a skip forward starts it again). */
  private keepInMemory(data: Buffer, offset: number): void {
    const joined = offset === this.tailEnd ? Buffer.concat([this.tail, data]) : data;
    this.tailEnd = offset + data.length;
    // A copy when cut: a view would pin every chunk it was cut from.
    this.tail =
      joined.length > this.keepBytes ? Buffer.from(joined.subarray(joined.length - this.keepBytes)) : joined;
  }

  private async append(data: Buffer, offset: number): Promise<void> {
    const key = this.ctx.keys.taskOutput(this.taskId);
    const id = await this.ctx.redis.xadd(
      key,
      '*',
      'data',
      data,
      'off',
      String(offset),
      ...this.restartField(),
    );
    if (id === null) return;
    this.last = { data, offset };
    this.keepInMemory(data, offset);
    this.entries.push([id, data.length]);
    this.streamBytes += data.length;
    await this.trimTo(this.tailBytes);
  }
}

/** The last GUARD_BYTES of `before` followed by `data`. */
function lastBytes(before: Buffer, data: Buffer): Buffer {
  if (data.length >= GUARD_BYTES) return Buffer.from(data.subarray(data.length - GUARD_BYTES));
  const joined = Buffer.concat([before, data]);
  return joined.length > GUARD_BYTES ? joined.subarray(joined.length - GUARD_BYTES) : joined;
}
