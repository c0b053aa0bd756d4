import type { JtmContext } from '../context.js';

const FLUSH_MS = 250;
const STREAM_MAX = 2000;
const CHUNK_MAX = 64 * 1024;

/**
 * Buffers a task's output and appends it to the task's capped Redis stream a few times a second, so
 * `jtm logs` can show it from any host while the task runs, without one write per pty chunk.
 */
export class OutputStream {
  private buffer = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: JtmContext,
    private readonly taskId: number,
  ) {}

  write(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length >= CHUNK_MAX) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buffer === '') return;
    const data = this.buffer;
    this.buffer = '';
    try {
      await this.ctx.redis.xadd(
        this.ctx.keys.taskOutput(this.taskId),
        'MAXLEN',
        '~',
        STREAM_MAX,
        '*',
        'data',
        data,
      );
    } catch (err) {
      this.ctx.logger.debug({ err, task: this.taskId }, 'output not streamed');
    }
  }
}
