import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Express, Request, Response } from 'express';

import { forTask, type JtmContext } from '../context.js';
import { TaskNotFoundError } from '../errors.js';
import { refuseReplica } from '../redis/replica-check.js';
import { taskIdOfText } from '../tasks/job-data.js';
import { CHARTS_JS, uplotAssets } from '../report/browser-charts.js';
import { isActive, isFinal } from '../tasks/status.js';
import { lastRunSamples, samplesOfEntries } from '../tasks/resource-format.js';
import { outputEntry, readKeptOutput } from '../tasks/task-output.js';
import { esc, page } from '../http/html.js';
import { clientKey } from '../http/login-limit.js';

/** How much output the live view starts with (the tail), and how often it looks for more. */
const TAIL_BYTES = 64 * 1024;
const POLL_MS = 500;
/** Stream entries read at a time: what one viewer may have waiting in the server is one read's worth. */
const ENTRIES_PER_READ = 16;

function taskId(raw: unknown): number {
  return taskIdOfText(typeof raw === 'string' ? raw : '');
}

/** Samples as chart series: run time (s), CPU % of one core, resident MB; oldest first. */
async function samplesOf(
  anyShard: JtmContext,
  id: number,
): Promise<{ t: number[]; cpu: number[]; mem_mb: number[] }> {
  const ctx = forTask(anyShard, id);
  const out = { t: [] as number[], cpu: [] as number[], mem_mb: [] as number[] };
  for (const s of lastRunSamples(
    samplesOfEntries(await ctx.redis.xrange(ctx.keys.taskResources(id), '-', '+')),
  )) {
    out.t.push(Number(s['run_time'] ?? 0));
    out.cpu.push(Number(s['cpu_load'] ?? 0));
    out.mem_mb.push(Number(s['rmem_usage'] ?? 0));
  }
  return out;
}

/**
 * Server-sent events of a task's output: the last TAIL_BYTES first, then new chunks as the worker streams
 * them, until the task has ended (`event: end`) or the browser goes away.
 */
async function streamOutput(anyShard: JtmContext, id: number, req: Request, res: Response): Promise<void> {
  const ctx = forTask(anyShard, id);
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  // Sent now, not with the first event: a task with no output yet left the viewer without even a response.
  res.flushHeaders();
  let closed = false;
  req.on('close', () => (closed = true));
  // A viewer that reads slowly (a slow tunnel, a sleeping laptop with the tab open) must not make the server
  // hold the task's whole output for it: with 20 such viewers of a task printing 600 MB the dashboard grew by
  // 730 MB. Nothing more is read from Redis for it until what was written has gone out; meanwhile the
  // stream (capped by JTM_OUTPUT_TAIL_BYTES) moves on, and the viewer skips what was trimmed.
  const drained = (): Promise<void> =>
    new Promise(resolve => {
      if (!res.writableNeedDrain || closed) return resolve();
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  const key = ctx.keys.taskOutput(id);
  // One decoder for the connection: a character split between two writes of the task (tqdm's bars, accents,
  // emoji written a few bytes at a time) came out as two U+FFFD, each chunk decoded on its own (adversary 9 J11).
  let decoder = new StringDecoder('utf8');
  let started = false;
  const send = (chunk: Buffer): void => {
    // The first bytes sent may begin inside a character (the tail starts at a byte count): skip to the next one.
    let from = 0;
    if (!started)
      while (from < Math.min(3, chunk.length) && ((chunk[from] as number) & 0xc0) === 0x80) from++;
    started = true;
    const text = decoder.write(from > 0 ? chunk.subarray(from) : chunk);
    if (text) res.write(`data: ${JSON.stringify(text)}\n\n`);
  };
  /** The output offset up to which output was sent, and the run (token) it is of. */
  let pos = 0;
  /** How many times the output sent had started over (its stdout file truncated or rewritten): the entries' `ep`. */
  let epoch = 0;
  let run = (await ctx.redis.hget(ctx.keys.task(id), 'run_token')) ?? undefined;
  // Once a run has ended, its stream is replaced by the kept tail (Keys.taskOutputKept): what of it lies past
  // what was sent (at most TAIL_BYTES of it), when it is the run followed here.
  const sendKept = async (): Promise<void> => {
    const tail = await readKeptOutput(ctx, id, run);
    if (!tail) return;
    const { data, start } = tail;
    // An output that started over since what was sent: its kept tail's offsets start again at 0.
    if (tail.ep > epoch) [epoch, pos] = [tail.ep, 0];
    const from = Math.max(0, pos - start, data.length - TAIL_BYTES);
    if (from < data.length) send(data.subarray(from));
    pos = start + data.length;
  };
  // The tail: newest entries backwards until TAIL_BYTES, a few at a time (entries are up to 64 KB each: a
  // read of 1,000 was up to 64 MB per viewer for a 64 KB tail).
  const tail: Buffer[] = [];
  let size = 0;
  let last = '-';
  for (let before = '+', full = false; !full;) {
    const batch = await ctx.redis.xrevrangeBuffer(key, before, '-', 'COUNT', 4);
    for (const [idBuf, fields] of batch) {
      const entryId = idBuf.toString('latin1');
      const { data, off, ep } = outputEntry(fields);
      if (last === '-') {
        last = entryId;
        pos = off + data.length;
        epoch = ep;
      }
      before = `(${entryId}`;
      if (size + data.length > TAIL_BYTES) {
        full = true;
        break;
      }
      tail.unshift(data);
      size += data.length;
    }
    if (batch.length < 4) break;
  }
  if (tail.length > 0) send(Buffer.concat(tail));
  else await sendKept();
  let endedOnce = false;
  while (!closed) {
    await drained();
    if (closed) break;
    // A new run starts its output over: from its own start.
    const now = (await ctx.redis.hget(ctx.keys.task(id), 'run_token')) ?? undefined;
    if (now !== undefined && now !== run) {
      run = now;
      pos = 0;
      epoch = 0;
      last = '-';
      decoder = new StringDecoder('utf8');
    }
    const from = last === '-' ? '-' : `(${last}`;
    const entries = await ctx.redis.xrangeBuffer(key, from, '+', 'COUNT', ENTRIES_PER_READ);
    for (const [idBuf, fields] of entries) {
      const { data, off, ep } = outputEntry(fields);
      if (data.length > 0) send(data);
      pos = off + data.length;
      epoch = ep;
      last = idBuf.toString('latin1');
    }
    // More waiting than one read: go on at once (after the drain), not after a poll.
    if (entries.length === ENTRIES_PER_READ) continue;
    // A run that ended meanwhile: the end of its output is in the kept tail now.
    if (entries.length === 0) await sendKept();
    const status = await ctx.tasks.status(id);
    if (status === undefined || isFinal(status)) {
      // One more read after the end: the worker flushes its last output just before the final status.
      if (endedOnce) break;
      endedOnce = true;
      continue;
    }
    await sleep(POLL_MS);
  }
  const rest = decoder.end();
  if (!closed && rest) res.write(`data: ${JSON.stringify(rest)}\n\n`);
  if (!closed) res.end('event: end\ndata: {}\n\n');
}

/**
 * The live task page (`/task/live?id=N`): CPU and memory charts from the samples (refreshed while the task
 * runs), the tail of its output followed over SSE, and the kill button when actions are allowed.
 */
/** Live output streams one client may hold open at once (a viewer's tab holds one). */
export const MAX_STREAMS_PER_CLIENT = 32;

export function registerTaskLive(app: Express, ctx: JtmContext, allowActions: boolean): void {
  app.get('/api/tasks/:id/samples', async (req, res) => {
    const id = taskId(req.params['id']);
    const status = await forTask(ctx, id).tasks.status(id);
    if (status === undefined) throw new TaskNotFoundError(id);
    res.json({ task_id: id, active: isActive(status), samples: await samplesOf(ctx, id) });
  });
  const streams = new Map<string, number>();
  app.get('/api/tasks/:id/output/stream', async (req, res) => {
    const id = taskId(req.params['id']);
    // Each open stream polls Redis for as long as it lasts: 400 of them from one client, no credentials needed on
    // loopback, drove Redis to 2,400 commands a second (adversary 35 F8). A client (every loopback address is one,
    // as for the login limit) may hold MAX_STREAMS_PER_CLIENT at once; a browser tab holds one.
    const client = clientKey(req.socket.remoteAddress ?? '');
    const open = streams.get(client) ?? 0;
    if (open >= MAX_STREAMS_PER_CLIENT) {
      res.status(429).json({
        error: 'TOO_MANY_STREAMS',
        message: `at most ${MAX_STREAMS_PER_CLIENT} live output streams at once per client: close some`,
      });
      return;
    }
    streams.set(client, open + 1);
    res.on('close', () => {
      const n = (streams.get(client) ?? 1) - 1;
      if (n > 0) streams.set(client, n);
      else streams.delete(client);
    });
    if ((await forTask(ctx, id).tasks.status(id)) === undefined) {
      await refuseReplica(forTask(ctx, id));
      throw new TaskNotFoundError(id);
    }
    await streamOutput(ctx, id, req, res);
  });
  app.get('/task/live', async (req, res) => {
    const id = taskId(req.query['id']);
    const record = await forTask(ctx, id).tasks.get(id);
    if (!record) {
      await refuseReplica(forTask(ctx, id));
      res
        .status(404)
        .type('html')
        .send(page(`Task ${id}`, `<p class="empty">No task with id ${id}.</p>`, ''));
      return;
    }
    const { js, css } = uplotAssets();
    const kill =
      allowActions && isActive(record.status)
        ? `<form method="post" action="/task/${id}/kill"><button id="kill">Kill task ${id}</button></form>`
        : '';
    const body = `<style>${css}#output{background:#111827;color:#e5e7eb;padding:.6rem;max-height:24rem;overflow:auto;white-space:pre-wrap;font-size:.8rem}
#charts{display:flex;flex-wrap:wrap;gap:1rem}</style>
<p><span class="status-${esc(record.status_name)}" id="status">${esc(record.status_name)}</span> · pool ${esc(record.pool)} ·
<code>${esc(record.command)}</code> · <a href="/task?id=${id}">record and history</a></p>${kill}
<h2>CPU and memory</h2><div id="charts"><p class="empty" id="no-samples">No resource samples yet.</p></div>
<h2>Output <small id="follow"></small></h2><pre id="output"></pre>
<script>${js}</script>
<script>${CHARTS_JS}
(function () {
  var id = ${id}, chart = null, box = document.getElementById('charts');
  function draw() {
    fetch('/api/tasks/' + id + '/samples').then(function (r) { return r.json(); }).then(function (d) {
      var s = d.samples;
      if (s.t.length > 0) {
        var none = document.getElementById('no-samples');
        if (none) none.remove();
        if (chart) { chart.setData([s.t, s.cpu, s.mem_mb]); window.jtmCharts[0].points = s.t.length; }
        else { var el = document.createElement('div'); box.appendChild(el); chart = jtmUsageChart(el, { id: id, title: 'task ' + id }, s, 720); }
      }
      if (d.active) setTimeout(draw, 2000);
    });
  }
  draw();
  var out = document.getElementById('output'), follow = document.getElementById('follow');
  follow.textContent = '(following)';
  var es = new EventSource('/api/tasks/' + id + '/output/stream');
  es.onmessage = function (e) {
    out.textContent = (out.textContent + JSON.parse(e.data)).slice(-${TAIL_BYTES});
    out.scrollTop = out.scrollHeight;
  };
  es.addEventListener('end', function () { es.close(); follow.textContent = '(task ended)'; });
})();
</script>`;
    res.type('html').send(page(`Task ${id}`, body, ''));
  });
}
