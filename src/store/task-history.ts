import { HISTORY_DEFAULT_REASONS } from '../redis/scripts.js';
import { isFinal, TaskStatus } from '../task-status.js';

/** One status transition of a task, as `status --json`, the dashboard and the API show it. */
export interface TaskEvent {
  t: number;
  from: number;
  to: number;
  reason: string;
}

/** The record fields a history is read with: what its entries leave out is in them. */
export interface HistoryContext {
  history?: string;
  queued_at?: string | number;
  worker_id?: string;
  host?: string;
  reason?: string;
}

const UNESCAPE: Record<string, string> = { '%25': '%', '%3B': ';', '%7E': '~' };
const unescape = (s: string): string => s.replace(/%(25|3B|7E)/g, m => UNESCAPE[m] ?? m);

/**
 * Decodes a record's `history` field, written by the Lua scripts (src/redis/scripts.ts: entry, appendHistory): entries
 * `ms after queued_at,from,to[,reason]` joined by `;`, reasons with `%`, `;` and `~` percent-escaped. A
 * left-out reason is the transition's default, or for the one final transition the record's own reason; a
 * reason ending in a bare `~` is a start, "<reason or 'started'> on <worker>@<host>" of the record's latest
 * run (a later start writes the earlier one out in full). The only decoder: every reader goes through here.
 */
export function decodeHistory(rec: HistoryContext): TaskEvent[] {
  if (!rec.history) return [];
  const base = Number(rec.queued_at ?? 0) || 0;
  return rec.history.split(';').map(e => {
    const [dt = '0', from = '0', to = '0'] = e.split(',', 3);
    const a = Number(from);
    const b = Number(to);
    const at = dt.length + from.length + to.length + 3;
    const raw = at <= e.length ? e.slice(at) : undefined;
    let reason: string;
    if (raw === undefined) {
      reason = isFinal(b) && a !== b ? (rec.reason ?? '') : (HISTORY_DEFAULT_REASONS[`${a}>${b}`] ?? '');
    } else if (raw.endsWith('~')) {
      reason = `${unescape(raw.slice(0, -1)) || 'started'} on ${rec.worker_id ?? ''}@${rec.host ?? ''}`;
    } else reason = unescape(raw);
    return { t: base + Number(dt), from: a, to: b, reason };
  });
}

/**
 * When the task last began to wait for a worker before its last start (`startedAt`): its last return to the
 * queue (running to pending or queued: a give-back, a recovery), or the takeover that is that start (running
 * to running at its very time), else its submission. Its queue wait is the time from there to the start, as
 * the Lua scripts count it (scripts.ts countFinished); counted from the submission, earlier runs were counted as
 * waiting. A kill request or a leftovers report on the running task (running to running) is no return.
 */
export function waitingSince(rec: HistoryContext, startedAt: number): number | undefined {
  let since = rec.queued_at === undefined ? undefined : Number(rec.queued_at);
  for (const e of decodeHistory(rec)) {
    if (e.from !== TaskStatus.running || e.t > startedAt) continue;
    if (
      e.to === TaskStatus.pending ||
      e.to === TaskStatus.queued ||
      (e.to === TaskStatus.running && e.t === startedAt)
    )
      since = e.t;
  }
  return since;
}
