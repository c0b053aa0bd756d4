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
  return historyEntries(rec).map(({ t, from, to, raw }) => {
    let reason: string;
    if (raw === undefined) {
      reason =
        isFinal(to) && from !== to ? (rec.reason ?? '') : (HISTORY_DEFAULT_REASONS[`${from}>${to}`] ?? '');
    } else if (raw.endsWith('~')) {
      reason = `${unescape(raw.slice(0, -1)) || 'started'} on ${rec.worker_id ?? ''}@${rec.host ?? ''}`;
    } else reason = unescape(raw);
    return { t, from, to, reason };
  });
}

/** The entries of a history as written: time, transition and the raw reason (undefined: left out). */
function historyEntries(rec: HistoryContext): { t: number; from: number; to: number; raw?: string }[] {
  if (!rec.history) return [];
  const base = Number(rec.queued_at ?? 0) || 0;
  return rec.history.split(';').map(e => {
    const [dt = '0', from = '0', to = '0'] = e.split(',', 3);
    const at = dt.length + from.length + to.length + 3;
    const entry = { t: base + Number(dt), from: Number(from), to: Number(to) };
    return at <= e.length ? { ...entry, raw: e.slice(at) } : entry;
  });
}

/**
 * When the task last began to wait for a worker: before its latest start (`startedAt`), its last return to the
 * queue (running to pending or queued: a give-back, a recovery) or the takeover that is that start (running to
 * running), else its submission; without `startedAt` (it waits now), its last return to the queue. Its queue
 * wait is the time from there to the start, as the Lua scripts count it (scripts.ts countFinished): counted
 * from the submission, earlier runs were waiting. The latest start is found by its mark (a reason ending in
 * `~`), not by time: entries written by hosts whose clocks differ are only kept in order. A kill request or a
 * leftovers report on the running task (running to running, no mark) is no return.
 */
export function waitingSince(rec: HistoryContext, startedAt?: number): number | undefined {
  let since = rec.queued_at === undefined ? undefined : Number(rec.queued_at);
  for (const e of historyEntries(rec)) {
    const start = startedAt !== undefined && (e.raw?.endsWith('~') ?? false);
    const back = e.to === TaskStatus.pending || e.to === TaskStatus.queued;
    if (e.from === TaskStatus.running && (back || (start && e.to === TaskStatus.running))) since = e.t;
    if (start) break;
  }
  return since === undefined || startedAt === undefined ? since : Math.min(since, startedAt);
}
