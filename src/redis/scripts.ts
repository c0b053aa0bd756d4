/**
 * Lua scripts that change a task record. Each runs atomically in Redis, so a transition is one
 * compare-and-set: a final status is never left, and kill, completion and recovery cannot overwrite
 * each other. Keys beyond KEYS are built from bases that Keys (keys.ts) passes in ARGV; they share the
 * prefix's hash tag, hence the slot, so this is safe on Redis Cluster.
 *
 * Every Lua script of JTM lives here and runs by SHA through runScript (run-script.ts).
 */

import { TaskStatus } from '../task-status.js';
import { RECENT_ENDS_TRIM_EVERY, RECENT_ENDS_WINDOW_MS } from './keys.js';

const S = TaskStatus;

/** Upper bounds (seconds) of the task duration and queue-wait histograms kept in Redis (see task-counters.ts). */
export const DURATION_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 14400, 43200, 86400] as const;
export const WAIT_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400] as const;

/**
 * The history field of a task record (decoded by src/store/task-history.ts). A reason equal to its
 * transition's default here is not stored: the reader puts it back. Keeping the usual history short keeps
 * the whole record a listpack (Redis converts a hash to a hashtable, about twice the size, once one value
 * passes `hash-max-listpack-value`, 64 bytes by default): "0,0,1;412,1,2;3290,2,3,~;3340,3,4".
 */
export const HISTORY_DEFAULT_REASONS: Readonly<Record<string, string>> = {
  [`${S.ready}>${S.queued}`]: 'submitted',
  [`${S.queued}>${S.pending}`]: 'queued on pool',
};
/** Length the history field is trimmed to, oldest entries first (a task re-queued over and over). */
export const HISTORY_MAX_BYTES = 4000;

/**
 * How far past the highest value seen the id counter is raised when it went back: the ids handed out after
 * the last look (one sweep interval of submits, at thousands per second) must not come again. The manager
 * (src/manager/id-counter.ts), a submit that found its new ids taken (TaskStore.createMany) and the first id
 * handed out by a Redis that restarted or failed over (guardRunId) all raise by it.
 */
export const ID_ROLLBACK_MARGIN = 1_000_000;

/**
 * Shared helpers of the scripts, each script prepending only those it uses (prelude below). Redis runs a
 * script's whole text at every EVALSHA: each helper is a closure and each table a construction per call,
 * garbage for Lua's collector after it (measured with callgrind, scripts/bench/script-cost.mjs: the former
 * shared prelude of every helper and three tables cost ≈ 16,000 instructions per call, a bare
 * `return 1` ≈ 12,000). So constants are inlined where they are used, lookups are generated as if-chains, and
 * what a helper needs is declared beside it. Status codes are interpolated from TaskStatus, so the Lua and
 * the TypeScript cannot disagree about what a number means.
 *
 * Numbers given to redis.call are formatted by Redis with snprintf("%.17g") (≈ 3,000 instructions each):
 * values that are text already (ARGV, the constants below) are passed as text.
 */
const STATUS_TEXT = Object.fromEntries(
  Object.entries(S).map(([name, code]) => [name, `'${code}'`]),
) as Record<keyof typeof S, string>;

/** Lua: `name` = the status name of the number `code` ('invalidtask' for an unknown code), likeliest first. */
const luaStatusName = (name: string, code: string): string =>
  `local ${name} = 'invalidtask'\n  ` +
  Object.entries(S)
    .sort(([a], [b]) => (a === 'success' ? -1 : b === 'success' ? 1 : 0))
    .map(([n, c], i) => `${i === 0 ? 'if' : 'elseif'} ${code} == ${c} then ${name} = '${n}'`)
    .join('\n  ') +
  ' end';

/** Lua: `name` = the text index of the histogram bucket of `ms` (the first bound ≥ it, 0-based; #bounds for +Inf). */
const luaBucket = (name: string, ms: string, boundsS: readonly number[]): string =>
  boundsS
    .map((b, i) => `${i === 0 ? 'if' : 'elseif'} ${ms} <= ${Math.round(b * 1000)} then ${name} = '${i}'`)
    .join(' ') + ` else ${name} = '${boundsS.length}' end`;

/** Lua: whether the reason of transition from → to is that transition's default (HISTORY_DEFAULT_REASONS). */
const luaDefaultReason = (from: string, to: string, reason: string): string =>
  Object.entries(HISTORY_DEFAULT_REASONS)
    .map(([k, v]) => {
      const [a, b] = k.split('>');
      return `(${from} == ${a} and ${to} == ${b} and ${reason} == '${v}')`;
    })
    .join(' or ');

interface Helper {
  lua: string;
  needs?: readonly HelperName[];
}
type HelperName =
  | 'isFinal'
  | 'esc'
  | 'entry'
  | 'appendHistory'
  | 'settleStart'
  | 'owns'
  | 'addPairs'
  | 'statsPool'
  | 'countFinished'
  | 'ranUntilNow'
  | 'finalize'
  | 'guardRunId';

/** In dependency order: a helper is emitted after those it needs. */
const HELPERS: Readonly<Record<HelperName, Helper>> = {
  isFinal: {
    // Failure statuses are the negative codes; success is the only other final one.
    lua: `local function isFinal(code) return code < ${S.ready} or code == ${S.success} end`,
  },
  esc: {
    // The gsub table is built only for a text that has something to escape (rare).
    lua: `local function esc(s)
  if not string.find(s, '[%%;~]') then return s end
  return (string.gsub(s, '[%%;~]', {['%'] = '%25', [';'] = '%3B', ['~'] = '%7E'}))
end`,
  },
  entry: {
    needs: ['isFinal', 'esc'],
    // The history of a task: one field of its record, \`history\` (see task-history.ts): entries
    // 'ms after queued_at,from,to[,reason]' joined by ';', capped by length. No key of its own: one HSET writes
    // the status and the history together, and nothing else expires with the record.
    // The entry of one transition. reason: its text, left out where the reader derives it (the default of the
    // transition; the record's own reason for the one final transition); raw: already encoded.
    lua: `local function entry(now, queued, from, to, reason, raw)
  local e = string.format('%d,%d,%d', tonumber(now) - (tonumber(queued) or 0), from, to)
  if reason == nil or ${luaDefaultReason('from', 'to', 'reason')} or (isFinal(to) and from ~= to) then return e end
  return e .. ',' .. (raw and reason or esc(reason))
end`,
  },
  appendHistory: {
    // h with entry e appended; past HISTORY_MAX_BYTES the oldest entries go. Entries stay in time order: each
    // writer stamps with its own clock, read before its script ran (a worker that started a task just after
    // the submit marked it pending, a worker on a host whose clock is behind), so an entry older than the
    // last takes the last one's time. The last entry is the text after the last ';' (reasons escape ';').
    lua: `local function appendHistory(h, e)
  if not h or h == '' then return e end
  local last = string.match(h, '(%-?%d+),[^;]*$')
  local at = string.match(e, '^%-?%d+')
  if last and at and tonumber(at) < tonumber(last) then e = last .. string.sub(e, #at + 1) end
  h = h .. ';' .. e
  if #h > ${HISTORY_MAX_BYTES} then
    local cut = string.find(h, ';', #h - ${HISTORY_MAX_BYTES}, true)
    if cut then h = string.sub(h, cut + 1) end
  end
  return h
end`,
  },
  settleStart: {
    needs: ['esc'],
    // A start's entry ends in '~': "<reason> on <worker>@<host>" with the run's worker and host, which the
    // record holds until the next start. Before a start overwrites them, the previous start's entry gets them.
    lua: `local function settleStart(h, wid, host)
  if not h or not string.find(h, '~', 1, true) then return h end
  local on = esc(' on ' .. (wid or '') .. '@' .. (host or ''))
  h = string.gsub(h, ',~', ',started~')
  return (string.gsub(h, '~', function() return on end))
end`,
  },
  owns: {
    // Whether the task is running the execution (worker, run token) a fenced write names: a stale execution
    // (taken over, recovered, or ended) is refused, so it can never record anything over a newer one.
    lua: `local function owns(taskKey, wid, runToken)
  local v = redis.call('HMGET', taskKey, 'status', 'worker_id', 'run_token')
  return tonumber(v[1]) == ${S.running} and v[2] == wid and v[3] == runToken
end`,
  },
  addPairs: {
    // Appends the ARGV[first..] field, value pairs to the list f (one HSET per write instead of one per field).
    lua: `local function addPairs(f, first)
  for i = first, #ARGV - 1, 2 do f[#f + 1] = ARGV[i]; f[#f + 1] = ARGV[i + 1] end
  return f
end`,
  },
  statsPool: {
    // The label a pool's counters go under: a per-workflow pool's (`<pool>_<workflow uuid>`, pool-spec.ts
    // workflowPoolBase) under `<pool>_*` from its first task. Folded there only once the pool was gone, each
    // workflow's tasks were counted twice by Prometheus's rate() and increase() summed over pools: once as they
    // ran, again as a jump of `<pool>_*` when its series went (adversary 9 J12).
    lua: `local function statsPool(pool)
  local base = string.match(pool, '^(.+)_%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$')
  return base and (base .. '_*') or pool
end`,
  },
  countFinished: {
    needs: ['statsPool'],
    // Counts a task that reached a final status (in the same script as the change, so each end counts once),
    // with its run time and queue wait when it ran. statsBase: the stats key prefix (Keys.statsBase).
    // Histogram in a hash: '<pool>:<i>' counts the values in bucket i alone, '<pool>:sum_ms' their sum in
    // milliseconds (an integer: HINCRBY, not HINCRBYFLOAT, which costs Redis twice as much).
    // The queue wait is the counted run's: from the task's last return to the queue (the last entry leaving
    // running: a give-back, a recovery, a takeover), else from its submission; counted from the submission, a
    // task that ran 11 s, was given back and re-ran at once showed 13.6 s of waiting (adversary 5 G5).
    lua: `local function countFinished(statsBase, pool, to, queued, started, ended, history)
  if not pool then return end
  pool = statsPool(pool)
  ${luaStatusName('name', 'to')}
  redis.call('HINCRBY', statsBase .. 'finished', pool .. ':' .. name, '1')
  if not started or started == '' then return end
  started = tonumber(started)
  local b
  if ended and ended ~= '' then
    local ms = math.max(0, tonumber(ended) - started)
    ${luaBucket('b', 'ms', DURATION_BUCKETS)}
    redis.call('HINCRBY', statsBase .. 'duration', pool .. ':' .. b, '1')
    redis.call('HINCRBY', statsBase .. 'duration', pool .. ':sum_ms', string.format('%d', ms))
  end
  if queued and queued ~= '' then
    local from = tonumber(queued)
    if history and string.find(';' .. history, ';%-?%d+,${S.running},') then
      -- Entries leaving running before the latest start (the entry marked '~'; found by order, not by time:
      -- hosts' clocks differ): back to the queue, or the takeover that is that start; not a kill request or a
      -- leftovers report on the running task (running to running, unmarked).
      for dt, efrom, eto, rest in string.gmatch(';' .. history, ';(%-?%d+),(%-?%d+),(%-?%d+)([^;]*)') do
        local start = string.sub(rest, -1) == '~'
        if efrom == '${S.running}' and (eto == '${S.pending}' or eto == '${S.queued}' or (start and eto == '${S.running}')) then
          from = tonumber(queued) + tonumber(dt)
        end
        if start then break end
      end
      from = math.min(from, started)
    end
    local ms = math.max(0, started - from)
    ${luaBucket('b', 'ms', WAIT_BUCKETS)}
    redis.call('HINCRBY', statsBase .. 'queue-wait', pool .. ':' .. b, '1')
    redis.call('HINCRBY', statsBase .. 'queue-wait', pool .. ':sum_ms', string.format('%d', ms))
  end
end`,
  },
  ranUntilNow: {
    // The start of the run an end ends: the record's started_at when the task was running, none when it was
    // waiting (a run given back to the queue and then ended before its next start: a kill of the waiting task).
    // Its started_at is cleared as it goes back to the queue; a record re-queued before that kept its last run's,
    // and the wait since counted as run time in the duration histogram (adversary 37 F1: 4 s run, 70.7 s).
    lua: `local function ranUntilNow(cur, started)
  if cur == RUNNING then return started end
  return nil
end`,
  },
  finalize: {
    needs: ['countFinished', 'ranUntilNow'],
    // Moves the task to a final status (already written, with ended_at): leaves the active index, starts the
    // retention clock, and counts the end. r: the record's worker_id, pool, queued_at, started_at as read by the
    // caller before its write (none of them changes with the end), and its history before the end's entry;
    // ended: the end time. retentionMs: text (ARGV).
    lua: `local function finalize(taskKey, activeKey, id, retentionMs, taskBase, workerBase, statsBase, to, r, ended)
  redis.call('ZREM', activeKey, id)
  if r.worker and r.worker ~= '' then redis.call('SREM', workerBase .. r.worker .. ':tasks', id) end
  redis.call('PEXPIRE', taskKey, retentionMs)
  -- The history list of a record written before the history became a field (read by TaskStore.events): a
  -- record created since starts its history with the submit's entry, and has no list to expire.
  if string.sub(r.history or '', 1, 5) ~= '0,0,1' then redis.call('PEXPIRE', taskBase .. id .. ':events', retentionMs) end
  -- Most tasks have neither a resource stream (it is written once a task has run 1 s) nor a live output
  -- stream (only output does): one EXISTS of both instead of two PEXPIREs of keys that are not there.
  local resources, output = taskBase .. id .. ':resources', taskBase .. id .. ':output'
  if redis.call('EXISTS', resources, output) > 0 then
    redis.call('PEXPIRE', resources, retentionMs)
    redis.call('PEXPIRE', output, retentionMs)
  end
  countFinished(statsBase, r.pool, to, r.queued, r.started, ended, r.history)
  -- The pool's index of recent ends (Keys.poolRecentEnds), for the dashboard's pool page: trimmed to the
  -- window at each end and expired a window after the last one, so it holds about an hour of ends.
  if r.pool and r.pool ~= '' and ended then
    local recent = statsBase .. 'recent-ends:' .. r.pool
    redis.call('ZADD', recent, ended, id)
    -- Trimmed once every ${RECENT_ENDS_TRIM_EVERY} ends (by its size), not at each: the reader asks for the window by score, so
    -- the trim only bounds the index (the window's ends + ${RECENT_ENDS_TRIM_EVERY}), and at each end it cost ≈ 22,000 Redis
    -- instructions per task, 8 % of an end (callgrind, scripts/bench/script-cost.mjs); a ZCARD costs a fifth of that.
    if redis.call('ZCARD', recent) % ${RECENT_ENDS_TRIM_EVERY} == 0 then
      -- By Redis's clock where the ending worker's is ahead: a worker 2 h fast emptied the pool's index.
      local t = redis.call('TIME')
      local cut = math.min(tonumber(ended), tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
      redis.call('ZREMRANGEBYSCORE', recent, '-inf', '(' .. string.format('%d', cut - ${RECENT_ENDS_WINDOW_MS}))
    end
    redis.call('PEXPIRE', recent, '${RECENT_ENDS_WINDOW_MS}')
  end
end`,
  },
  guardRunId: {
    // The id counter `counter` raised by ID_ROLLBACK_MARGIN when the Redis that runs this is not the one that
    // handed out the last ids (its run id, kept in `runKey` by the first call after each change): a restart or a
    // failover may have lost the last ids handed out, or gone back further (an older snapshot, a lagging
    // replica), and Cromwell holds those ids. Done here, by the first call that hands out an id after the change,
    // and not only at the manager's next sweep: the submits retried through an outage all land in the first
    // second after it, before that sweep, and got the ids of lost calls (adversary 29 F1: 15 of 24). The key is
    // written once per change; no raise for a key never written (a new site, or one from before this key).
    // INFO refused (an ACL user without it): no guard here (the manager's high-water mark stays). Returns the
    // counter before a raise, or false.
    // The key holds the run id and the replication id (`master_replid`): a Redis can go back in time without a
    // restart, made a replica of a stale node (a full resync replaces its data) and promoted again — its run id
    // stays, its replication id does not (a new one at each promotion): ids 4–7 were handed out twice that way
    // (adversary 30 F1).
    lua: `local function guardRunId(counter, runKey)
  local info = redis.pcall('INFO', 'server')
  local runId = type(info) == 'string' and string.match(info, 'run_id:(%w+)')
  if not runId then return false end
  local repl = redis.pcall('INFO', 'replication')
  local replId = type(repl) == 'string' and string.match(repl, 'master_replid:(%w+)')
  if replId then runId = runId .. ':' .. replId end
  local known = redis.call('GET', runKey)
  if known == runId then return false end
  redis.call('SET', runKey, runId)
  if not known then return false end
  local before = tonumber(redis.call('GET', counter) or '0')
  redis.call('INCRBY', counter, '${ID_ROLLBACK_MARGIN}')
  return before
end`,
  },
};

/**
 * The text a script starts with: the helpers it uses (and theirs), and the status codes as locals (numbers,
 * to compare with tonumber of a field; a status written is interpolated as text: STATUS_TEXT).
 */
function prelude(...use: HelperName[]): string {
  const wanted = new Set<HelperName>();
  const add = (h: HelperName): void => {
    if (wanted.has(h)) return;
    for (const d of HELPERS[h].needs ?? []) add(d);
    wanted.add(h);
  };
  use.forEach(add);
  const order = Object.keys(HELPERS) as HelperName[];
  return `
local READY, QUEUED, PENDING, RUNNING, SUCCESS = ${S.ready}, ${S.queued}, ${S.pending}, ${S.running}, ${S.success}
local TERMINATED, LOSTCONNECTION = ${S.terminated}, ${S.lostconnection}
${order
  .filter(h => wanted.has(h))
  .map(h => HELPERS[h].lua)
  .join('\n')}
`;
}

/**
 * create-task: allocates the next id of the shard, writes the record in status queued (1), counts it
 * submitted. The id is counter × shards + shard (shards.ts taskIdOfCounter): with one shard, the counter.
 * KEYS[1] next-task-id  KEYS[2] tasks:active  KEYS[3] stats:submitted  KEYS[4] the counter's run-id key (guardRunId)
 * ARGV[1] task key base  ARGV[2] now ms  ARGV[3] shard count  ARGV[4] shard  ARGV[5..] field, value pairs
 * (one of them `pool`)
 * Returns the new id.
 */
export const CREATE_TASK = `${prelude('entry', 'addPairs', 'statsPool', 'guardRunId')}
guardRunId(KEYS[1], KEYS[4])
local id = redis.call('INCR', KEYS[1]) * tonumber(ARGV[3]) + tonumber(ARGV[4])
local key = ARGV[1] .. id
redis.call('HSET', key, unpack(addPairs({'id', id, 'status', ${STATUS_TEXT.queued}, 'queued_at', ARGV[2], 'attempts', '0',
  'history', entry(ARGV[2], ARGV[2], READY, QUEUED, 'submitted')}, 5)))
for i = 5, #ARGV - 1, 2 do
  if ARGV[i] == 'pool' then redis.call('HINCRBY', KEYS[3], statsPool(ARGV[i + 1]), '1') end
end
redis.call('ZADD', KEYS[2], ARGV[2], id)
return id
`;

/**
 * transition: compare-and-set of the status, optionally fenced on one execution; a final status also
 * leaves the active index, starts the retention clock and is counted (finalize).
 * KEYS[1] task  KEYS[2] tasks:active
 * ARGV[1] allowed current statuses, comma separated  ARGV[2] new status  ARGV[3] now ms  ARGV[4] reason
 * ARGV[5] retention ms  ARGV[6] task key base  ARGV[7] worker key base
 * ARGV[8] fence worker id ('' = not fenced)  ARGV[9] fence run token  ARGV[10] stats key base
 * ARGV[11..] field, value pairs
 * Returns {1, previous} when done, {0, current} when the current status was not allowed, {2, current} when
 * the fence did not match (another execution owns the task now), {-1} if no task.
 */
export const TRANSITION = `${prelude('isFinal', 'addPairs', 'appendHistory', 'entry', 'finalize')}
local v = redis.call('HMGET', KEYS[1], 'status', 'worker_id', 'run_token', 'id', 'history', 'queued_at', 'pool', 'started_at')
if not v[4] then return {-1} end
local cur = tonumber(v[1])
-- This execution's own end, applied already: the same status under its worker and run token (a run token is
-- one execution's, and any later start replaces it). ioredis sends a command again on a new connection when its
-- answer was lost; the resend found the task final, the worker took its own write for another's and dropped the
-- run's result, and Cromwell's rc with it (adversary 31 F1). Answered as applied, changing nothing.
if ARGV[8] ~= '' and v[2] == ARGV[8] and v[3] == ARGV[9] and v[1] == ARGV[2] and cur ~= RUNNING then
  return {1, RUNNING}
end
-- A final status is never left, whatever the caller allows: a task ends in exactly one final state.
if isFinal(cur) then return {0, cur} end
-- The stored status is its code as text, as ARGV[1] lists them: compared as text, without a number per entry.
if not string.find(',' .. ARGV[1] .. ',', ',' .. v[1] .. ',', 1, true) then return {0, cur} end
if ARGV[8] ~= '' and not (cur == RUNNING and v[2] == ARGV[8] and v[3] == ARGV[9]) then return {2, cur} end
local to = tonumber(ARGV[2])
local f = addPairs({'status', ARGV[2], 'reason', ARGV[4], 'history', appendHistory(v[5], entry(ARGV[3], v[6], cur, to, ARGV[4]))}, 11)
if isFinal(to) then
  f[#f + 1] = 'ended_at'
  f[#f + 1] = ARGV[3]
  redis.call('HSET', KEYS[1], unpack(f))
  finalize(KEYS[1], KEYS[2], v[4], ARGV[5], ARGV[6], ARGV[7], ARGV[10], to,
    {worker = v[2], pool = v[7], queued = v[6], started = ranUntilNow(cur, v[8]), history = v[5]}, ARGV[3])
else
  redis.call('HSET', KEYS[1], unpack(f))
  -- leaving running without ending (re-queued): the old worker no longer owns it, and the run is over
  if cur == RUNNING then
    if v[2] and v[2] ~= '' then redis.call('SREM', ARGV[7] .. v[2] .. ':tasks', v[4]) end
    redis.call('HDEL', KEYS[1], 'started_at')
  end
end
return {1, cur}
`;

/**
 * fenced-set: sets fields of a task only while the named execution owns it (pid of a run, usage).
 * KEYS[1] task  ARGV[1] worker id  ARGV[2] run token  ARGV[3..] field, value pairs
 * Returns 1 when set, 0 when another execution (or none) owns the task.
 */
export const FENCED_SET = `${prelude('owns', 'addPairs')}
if not owns(KEYS[1], ARGV[1], ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], unpack(addPairs({}, 3)))
return 1
`;

/**
 * The record fields a worker needs to run a task, returned by start-task (the BullMQ job carries only the
 * task id): the order of the values after {1, attempt}.
 */
export const RUN_FIELDS = [
  'command',
  'cwd',
  'stdout',
  'stderr',
  'output_files',
  'allow_empty_outputs',
  'timeout_ms',
  'mem_limit',
  'rc_file',
  'host_deaths',
  'stop_givebacks',
] as const;

/**
 * start-task: a worker claims a task it fetched from its pool queue, for one execution (its run token).
 * KEYS[1] task  KEYS[2] tasks:active  KEYS[3] this worker's task set
 * ARGV[1] worker id  ARGV[2] host  ARGV[3] now ms  ARGV[4] retention ms  ARGV[5] task key base
 * ARGV[6] worker key base  ARGV[7] run token  ARGV[8] BullMQ lock token of the job  ARGV[9] submit key base
 * ARGV[10] stats key base
 * Returns {1, attempt, RUN_FIELDS values...} started; {0, status} not to be run (final, or just ended by a
 * pending kill or by exhausted retries); {2, 3} running on another live worker; {3, queued_at} its submit
 * has not completed (defer); {-1} no such task.
 * A running task is taken over only when its worker's alive key has expired (invariant: one live run); that
 * counts as a loss, and only losses spend retries (a stop gives the task back without one). A run after the
 * first starts with an empty live output (the previous run's stream is dropped here, before any of it).
 */
export const START_TASK = `${prelude('isFinal', 'appendHistory', 'entry', 'esc', 'settleStart', 'finalize')}
local t = KEYS[1]
-- What every start needs; what only a takeover, an end or a re-run needs is read by more() when it does (each
-- field asked is a scan of the record's listpack, and an unset one a scan to its end).
local v = redis.call('HMGET', t, 'id', 'status', 'submit_id', 'queued_at', 'kill_requested', 'attempts', 'history',
  ${RUN_FIELDS.map(f => `'${f}'`).join(', ')})
local id = v[1]
if not id then return {-1} end
local cur = tonumber(v[2])
if isFinal(cur) then return {0, cur} end
if cur == QUEUED then
  -- Queued: startable only once its submit has completed (the submit's commit key), so a submit killed
  -- half-way leaves nothing that runs; reconciliation fails such tasks later.
  -- Its value is the count committed; '0' is a submit taken back (submit-commit.ts ABORTED).
  local sid = v[3]
  local committed = sid and sid ~= '' and redis.call('GET', ARGV[9] .. sid)
  if not committed or committed == '0' then
    return {3, tonumber(v[4] or '0')}
  end
end
local m
-- worker_id, max_retries, losses, host, pool, started_at, run_token
local function more()
  m = m or redis.call('HMGET', t, 'worker_id', 'max_retries', 'losses', 'host', 'pool', 'started_at', 'run_token')
  return m
end
local h = v[7]
local function endNow(to, why)
  local r = more()
  redis.call('HSET', t, 'status', to, 'reason', why, 'ended_at', ARGV[3],
    'history', appendHistory(h, entry(ARGV[3], v[4], cur, to, why)))
  finalize(t, KEYS[2], id, ARGV[4], ARGV[5], ARGV[6], ARGV[10], to,
    {worker = r[1], pool = r[5], queued = v[4], started = ranUntilNow(cur, r[6]), history = v[7]}, ARGV[3])
  return {0, to}
end
if v[5] == '1' then return endNow(TERMINATED, 'killed before it started') end
local attempts = tonumber(v[6] or '0')
local reason = 'started'
local function startedReply(attempt)
  local out = {1, attempt}
  for i = 1, ${RUN_FIELDS.length} do out[i + 2] = v[7 + i] end
  return out
end
if cur == RUNNING then
  local r = more()
  local old = r[1] or ''
  -- This very claim, applied already: ioredis sends a command again after a reconnect when its answer was lost
  -- (autoResendUnfulfilledCommands). Answered as it was, changing nothing: it was counted as this live worker
  -- lost, in the same millisecond as its start (adversary 26 F2).
  if old == ARGV[1] and r[7] == ARGV[7] then return startedReply(attempts) end
  if old ~= ARGV[1] and redis.call('EXISTS', ARGV[6] .. old .. ':alive') == 1 then return {2, RUNNING} end
  local maxRetries = tonumber(r[2] or '0')
  local losses = tonumber(r[3] or '0') + 1
  redis.call('HSET', t, 'losses', losses)
  if losses > maxRetries then return endNow(LOSTCONNECTION, 'worker ' .. old .. ' was lost and no retries are left') end
  redis.call('SREM', ARGV[6] .. old .. ':tasks', id)
  reason = 'restarted: worker ' .. old .. ' was lost'
elseif cur ~= QUEUED and cur ~= PENDING then
  return {0, cur}
end
if h and string.find(h, '~', 1, true) then h = settleStart(h, more()[1], more()[4]) end
if cur == QUEUED then
  -- Fetched before submit marked it pending: record that step too, so every history reads queued → pending → running.
  h = appendHistory(h, entry(ARGV[3], v[4], QUEUED, PENDING, 'queued on pool'))
  cur = PENDING
end
h = appendHistory(h, entry(ARGV[3], v[4], cur, RUNNING, (reason == 'started' and '' or esc(reason)) .. '~', true))
redis.call('HSET', t, 'status', ${STATUS_TEXT.running}, 'worker_id', ARGV[1], 'host', ARGV[2], 'started_at', ARGV[3],
  'attempts', attempts + 1, 'reason', reason, 'run_token', ARGV[7], 'job_token', ARGV[8], 'history', h)
-- pid and exit_code emptied: an earlier run's are not this run's (written again when this run has them). A first
-- run has none to empty: two empty fields fewer per record, ≈ 6,300 Redis instructions less per start (callgrind).
if attempts > 0 then redis.call('HSET', t, 'pid', '', 'exit_code', '') end
-- An earlier run's live output (a first run has none: no DEL then).
if attempts > 0 then redis.call('DEL', ARGV[5] .. id .. ':output', ARGV[5] .. id .. ':output-kept') end
redis.call('SADD', KEYS[3], id)
return startedReply(attempts + 1)
`;

/**
 * request-kill: records the intent to kill; ends a task that is not running at once.
 * KEYS[1] task  KEYS[2] tasks:active
 * ARGV[1] now ms  ARGV[2] retention ms  ARGV[3] task key base  ARGV[4] worker key base  ARGV[5] stats key base
 * ARGV[6] the request's id ('' none): the same request sent again gets the answer it got the first time
 * Returns {-1} no task; {0, status} already final; {1, previous} ended now (it was not running);
 * {2, worker id} running on a live worker (which must kill it); {3, worker id} its worker is dead: ended now.
 */
export const REQUEST_KILL = `${prelude('isFinal', 'appendHistory', 'entry', 'finalize')}
local t = KEYS[1]
local v = redis.call('HMGET', t, 'id', 'status', 'worker_id', 'history', 'queued_at', 'pool', 'started_at', 'kill_requested',
  'kill_by', 'attempts')
local id = v[1]
if not id then return {-1} end
local cur = tonumber(v[2])
-- This very request, applied already: ioredis sends a command again on a new connection when its answer was lost.
-- Answered as it was the first time ('<request id>|<code>|<value>'): it answered "already ended by itself" for the
-- kill that ended the task (adversary 37 F9), and the job of a waiting task it ended was not removed.
if ARGV[6] ~= '' and v[9] then
  local by, code, value = string.match(v[9], '^([^|]*)|(%d)|(.*)$')
  if by == ARGV[6] then return {tonumber(code), value} end
end
if isFinal(cur) then return {0, cur} end
local function answered(code, value)
  if ARGV[6] ~= '' then redis.call('HSET', t, 'kill_by', ARGV[6] .. '|' .. code .. '|' .. value) end
  return {code, value}
end
local function terminate(why)
  redis.call('HSET', t, 'status', ${STATUS_TEXT.terminated}, 'reason', why, 'ended_at', ARGV[1],
    'history', appendHistory(v[4], entry(ARGV[1], v[5], cur, TERMINATED, why)))
  finalize(t, KEYS[2], id, ARGV[2], ARGV[3], ARGV[4], ARGV[5], TERMINATED,
    {worker = v[3], pool = v[6], queued = v[5], started = ranUntilNow(cur, v[7]), history = v[4]}, ARGV[1])
end
if cur ~= RUNNING then
  -- A run given back to the queue did start: "before it started" contradicted its history (adversary 38 L1).
  terminate(tonumber(v[10] or '0') > 0 and 'killed while waiting to run again' or 'killed before it started')
  return answered(1, cur)
end
local wid = v[3] or ''
if redis.call('EXISTS', ARGV[4] .. wid .. ':alive') == 1 then
  -- A kill already requested is not recorded again (the worker is still told): 120 concurrent kills of one
  -- task wrote 25 history entries, pushing its older ones out of the capped history.
  if v[8] ~= '1' then
    redis.call('HSET', t, 'kill_requested', '1', 'kill_requested_at', ARGV[1],
      'history', appendHistory(v[4], entry(ARGV[1], v[5], cur, cur, 'kill requested')))
    return answered(2, wid)
  end
  return {2, wid}
end
redis.call('HSET', t, 'kill_requested', '1', 'kill_requested_at', ARGV[1])
terminate('killed; its worker ' .. wid .. ' is not alive')
return answered(3, wid)
`;

/**
 * recover-task: the manager ends the run of a task whose worker is dead, with the same rule as start-task:
 * the loss is counted; re-queued (pending) while losses ≤ max_retries, else lostconnection; a task with a
 * pending kill ends terminated. Only the execution the manager looked at (run token), still on that very
 * worker, whose alive key is gone, is touched: a manager that acts on a stale view changes nothing.
 * KEYS[1] task  KEYS[2] tasks:active
 * ARGV[1] dead worker id  ARGV[2] now ms  ARGV[3] retention ms  ARGV[4] task key base  ARGV[5] worker key base
 * ARGV[6] run token the decision was made on ('' = whichever runs there)  ARGV[7] stats key base
 * ARGV[8] why the worker is silent when that is a stop, not a loss ('' = lost): its Slurm allocation suspended.
 * A stop re-queues the task without spending a retry (a task with a pending kill still ends terminated).
 * A final end is dated at the worker's last beat (`last_beat` of its record), or the start if later.
 * Returns {1, new status}; {0, status} not that execution on that worker (nothing done); {2} worker alive;
 * {-1} no task.
 */
/** Stops of one task by its allocation's suspension that spend no retry (recover-task); later ones are losses. */
export const MAX_SUSPEND_STOPS = 3;

export const RECOVER_TASK = `${prelude('isFinal', 'appendHistory', 'entry', 'finalize')}
local t = KEYS[1]
local v = redis.call('HMGET', t, 'id', 'status', 'worker_id', 'run_token', 'losses', 'max_retries', 'kill_requested',
  'history', 'queued_at', 'pool', 'started_at', 'suspend_stops')
local id = v[1]
if not id then return {-1} end
local cur = tonumber(v[2])
local wid = ARGV[1]
if cur ~= RUNNING or v[3] ~= wid then
  redis.call('SREM', ARGV[5] .. wid .. ':tasks', id)
  return {0, cur}
end
if ARGV[6] ~= '' and (v[4] or '') ~= ARGV[6] then return {0, cur} end
if redis.call('EXISTS', ARGV[5] .. wid .. ':alive') == 1 then return {2} end
local stop = ARGV[8] or ''
-- At most ${MAX_SUSPEND_STOPS} stops of a task by suspension; later ones are losses: a site whose gang scheduling suspends every
-- allocation each time slice would re-queue a task longer than a slice for ever, never spending a retry.
local stops = tonumber(v[12] or '0')
if stop ~= '' then
  stops = stops + 1
  if stops > ${MAX_SUSPEND_STOPS} then stop = '' end
end
local losses = tonumber(v[5] or '0') + (stop == '' and 1 or 0)
local maxRetries = tonumber(v[6] or '0')
local to, why
if v[7] == '1' then
  to, why = TERMINATED, 'killed; its worker ' .. wid .. ' was lost'
elseif stop ~= '' then
  to, why = PENDING, 're-queued: ' .. stop
elseif losses > maxRetries then
  to, why = LOSTCONNECTION, 'worker ' .. wid .. ' was lost and no retries are left'
else
  to, why = PENDING, 're-queued: worker ' .. wid .. ' was lost (' .. losses .. ' of ' .. maxRetries .. ' retries used)'
end
local h = appendHistory(v[8], entry(ARGV[2], v[9], cur, to, why))
if isFinal(to) then
  -- The run ended when its worker was last heard from (its last beat, or the start if it died before beating
  -- again), not at this detection a lease later: the report's wall time and the duration histogram added the
  -- missed-beat window to every lost run (adversary 14 F8). Both times are the worker's clock; never past now.
  local ended = tonumber(ARGV[2])
  -- A worker record gone (it outlives the worker a day): no sign of when, the detection it is.
  local started = tonumber(v[11] or '')
  local beat = tonumber(redis.call('HGET', ARGV[5] .. wid, 'last_beat') or '')
  -- Never before the start (a manager whose clock is behind the worker's), nor past the detection.
  if started and beat then ended = math.max(started, math.min(ended, beat)) end
  redis.call('HSET', t, 'status', to, 'reason', why, 'losses', losses, 'ended_at', ended, 'history', h)
  finalize(t, KEYS[2], id, ARGV[3], ARGV[4], ARGV[5], ARGV[7], to,
    {worker = v[3], pool = v[10], queued = v[9], started = v[11], history = v[8]}, ended)
else
  redis.call('HSET', t, 'status', to, 'reason', why, 'losses', losses, 'pid', '', 'history', h)
  redis.call('HDEL', t, 'started_at')
  if stop ~= '' then redis.call('HSET', t, 'suspend_stops', stops) end
  redis.call('SREM', ARGV[5] .. wid .. ':tasks', id)
end
return {1, to}
`;

/**
 * note-on-record: something happened to a task that its status does not say — a worker killed processes of a
 * lost run (leftovers.ts: their pids appended to `leftover_pids`), JTM could not write the rc of a task it ended
 * (rc-file.ts: `rc_error`). Sets the field and says so in the history, without touching the status: the run
 * it is about is over, whatever the task has become since.
 * KEYS[1] task
 * ARGV[1] now ms  ARGV[2] field  ARGV[3] value  ARGV[4] reason  ARGV[5] '1': appended to the field's value
 * (comma separated), else replacing it
 * Returns 1, or 0 if no task (expired: nothing to note on).
 */
export const NOTE_ON_RECORD = `${prelude('appendHistory', 'entry')}
local t = KEYS[1]
local v = redis.call('HMGET', t, 'id', 'status', ARGV[2], 'history', 'queued_at')
if not v[1] then return 0 end
local cur = tonumber(v[2])
local value = ARGV[3]
if ARGV[5] == '1' and v[3] and v[3] ~= '' then value = v[3] .. ',' .. ARGV[3] end
redis.call('HSET', t, ARGV[2], value,
  'history', appendHistory(v[4], entry(ARGV[1], v[5], cur, cur, ARGV[4])))
return 1
`;

/**
 * create-tasks: create-task for many tasks in one call (bulk submit: one round trip and one script run
 * per chunk instead of one per task). Ids are consecutive counters of the shard, in the order of the tasks.
 * An id whose record, or whose job in the task's pool queue, still exists is never handed out again: with the
 * counter alone lost (evicted, deleted) while records were kept, the next submit got id 1 again, overwrote the
 * kept record of the old task 1 and its job collided with the old one's (adversary 24 F7). One EXISTS over
 * every key of the call; on a hit nothing is written (not even the counter) and the caller raises the
 * counter (TaskStore.createMany) and calls again.
 * The call's answer is kept under KEYS[4] (for CREATE_CALL_TTL_MS), and the same call again (a token of its
 * own) gets it and writes nothing: ioredis sends a command again after a reconnect when its answer was lost, and
 * a second run made a second block of records with the same submit id, which reconciliation would then have
 * given jobs as committed: the command run twice, once under an id nobody had (adversary 26 follow-up). A retried
 * submit sends each chunk again with its first try's token (submit-task.ts), so a chunk that try wrote is not
 * written twice either. No record of a submit is written once its commit key (KEYS[5]) exists, committed or
 * taken back: a copy of a call that reached Redis that late (past CREATE_CALL_TTL_MS) would add records to a
 * committed submit.
 * KEYS[1] next-task-id  KEYS[2] tasks:active  KEYS[3] stats:submitted  KEYS[4] this call's create-call key
 * KEYS[5] the counter's run-id key (guardRunId: the counter raised first after a restart or failover)
 * KEYS[6] (optional) the submit's commit key
 * ARGV[1] task key base  ARGV[2] now ms  ARGV[3] shard count  ARGV[4] shard  ARGV[5] number of tasks
 * ARGV[6] job key base of the pool queues (`<queue prefix>:`; a task's job is `<base><pool>:<job id prefix><id>`)
 * ARGV[7] job id prefix ('': the jobs are not looked at)  ARGV[8] number of shared field, value pairs (those every task of the call has:
 * written once in ARGV, to each record), then the shared pairs, then per task: the number of its own pairs,
 * then the pairs. One of the pairs is `pool`, counted submitted.
 * Returns the first id (the next ones follow every shard-count ids), or {0, c} when a record or job of one of
 * the ids exists, c being the highest counter value among those taken, or {-1} when KEYS[5] exists.
 */
/** How long a create-tasks call's answer is kept for the same call sent again: far past any client's reconnect. */
export const CREATE_CALL_TTL_MS = 600_000;

export const CREATE_TASKS = `${prelude('entry', 'statsPool', 'guardRunId')}
local again = redis.call('GET', KEYS[4])
if again then return tonumber(again) end
if KEYS[6] and redis.call('EXISTS', KEYS[6]) == 1 then return {-1} end
guardRunId(KEYS[1], KEYS[5])
local shards, shard = tonumber(ARGV[3]), tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local first = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
local nshared = tonumber(ARGV[8])
local sharedPool = nil
for i = 9, 8 + 2 * nshared, 2 do if ARGV[i] == 'pool' then sharedPool = ARGV[i + 1] end end
-- Where each task's own pairs start in ARGV, and its pool (the record and the job whose keys must be free).
local jobs = ARGV[7] ~= ''
local at, own, pools, taken = {}, {}, {}, {}
local a = 9 + 2 * nshared
for k = 1, n do
  local id = (first + k - 1) * shards + shard
  local npairs = tonumber(ARGV[a])
  local pool = sharedPool
  for i = a + 1, a + 2 * npairs, 2 do if ARGV[i] == 'pool' then pool = ARGV[i + 1] end end
  at[k], own[k], pools[k] = a, npairs, pool or false
  taken[#taken + 1] = ARGV[1] .. id
  if pool and jobs then taken[#taken + 1] = ARGV[6] .. pool .. ':' .. ARGV[7] .. id end
  a = a + 2 * npairs + 1
end
if redis.call('EXISTS', unpack(taken)) > 0 then
  for k = n, 1, -1 do
    local id = (first + k - 1) * shards + shard
    if redis.call('EXISTS', ARGV[1] .. id) == 1
      or (pools[k] and jobs and redis.call('EXISTS', ARGV[6] .. pools[k] .. ':' .. ARGV[7] .. id) == 1) then
      return {0, first + k - 1}
    end
  end
end
redis.call('INCRBY', KEYS[1], n)
local first_entry = entry(ARGV[2], ARGV[2], READY, QUEUED, 'submitted')
local active = {}
local perPool = {}
for k = 1, n do
  local id = (first + k - 1) * shards + shard
  local fields = {'id', id, 'status', ${STATUS_TEXT.queued}, 'queued_at', ARGV[2], 'attempts', '0', 'history', first_entry}
  for i = 9, 8 + 2 * nshared do fields[#fields + 1] = ARGV[i] end
  for i = at[k] + 1, at[k] + 2 * own[k] do fields[#fields + 1] = ARGV[i] end
  local pool = pools[k]
  if pool then perPool[pool] = (perPool[pool] or 0) + 1 end
  redis.call('HSET', ARGV[1] .. id, unpack(fields))
  active[#active + 1] = ARGV[2]
  active[#active + 1] = id
end
redis.call('ZADD', KEYS[2], unpack(active))
for pool, count in pairs(perPool) do redis.call('HINCRBY', KEYS[3], statsPool(pool), count) end
redis.call('SET', KEYS[4], first * shards + shard, 'PX', ${CREATE_CALL_TTL_MS})
return first * shards + shard
`;

/**
 * transition-many: the transition script for many tasks, without fields (bulk submit's queued →
 * pending, or → failed when the jobs could not be added). Tasks not in an allowed status are left alone.
 * KEYS[1] tasks:active
 * ARGV[1] allowed current statuses, comma separated  ARGV[2] new status  ARGV[3] now ms  ARGV[4] reason
 * ARGV[5] retention ms  ARGV[6] task key base  ARGV[7] worker key base  ARGV[8] stats key base
 * ARGV[9..] task ids
 * Returns the number of tasks moved.
 */
export const TRANSITION_MANY = `${prelude('isFinal', 'appendHistory', 'entry', 'finalize')}
local allowed = {}
for s in string.gmatch(ARGV[1], '[^,]+') do allowed[tonumber(s)] = true end
local to = tonumber(ARGV[2])
local final = isFinal(to)
local moved = 0
for i = 9, #ARGV do
  local id = ARGV[i]
  local t = ARGV[6] .. id
  -- pool and started_at only for finalize (each field asked is a scan of the record).
  local v
  if final then v = redis.call('HMGET', t, 'status', 'worker_id', 'history', 'queued_at', 'pool', 'started_at')
  else v = redis.call('HMGET', t, 'status', 'worker_id', 'history', 'queued_at') end
  local cur = tonumber(v[1])
  if cur ~= nil and allowed[cur] and not isFinal(cur) then
    local h = appendHistory(v[3], entry(ARGV[3], v[4], cur, to, ARGV[4]))
    if final then
      redis.call('HSET', t, 'status', ARGV[2], 'reason', ARGV[4], 'ended_at', ARGV[3], 'history', h)
      finalize(t, KEYS[1], id, ARGV[5], ARGV[6], ARGV[7], ARGV[8], to,
        {worker = v[2], pool = v[5], queued = v[4], started = ranUntilNow(cur, v[6]), history = v[3]}, ARGV[3])
    else
      redis.call('HSET', t, 'status', ARGV[2], 'reason', ARGV[4], 'history', h)
      if cur == RUNNING then
        if v[2] and v[2] ~= '' then redis.call('SREM', ARGV[7] .. v[2] .. ':tasks', id) end
        redis.call('HDEL', t, 'started_at')
      end
    end
    moved = moved + 1
  end
end
return moved
`;

/**
 * commit-submit: a submit's commit (submit-commit.ts: SET NX of its commit key to the count of its tasks) and the
 * queued → pending mark of its first tasks, in one round trip: a one-task submit (Cromwell's: one `jtm submit` per
 * call) sent the commit and then the mark (transition-many), two waits of a round trip each. The mark is for the
 * record only (a worker starts a committed queued task the same); it is made only when the commit holds, so
 * the tasks of a submit taken back stay queued (failed by the submitter, or by reconciliation).
 * KEYS[1] the commit key
 * ARGV[1] count  ARGV[2] commit key life (ms)  ARGV[3] now ms  ARGV[4] reason  ARGV[5] task key base
 * ARGV[6..] task ids to mark
 * Returns -1 when the submit was taken back (the key holds '0'), else the number of tasks marked.
 */
export const COMMIT_SUBMIT = `${prelude('appendHistory', 'entry')}
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') and redis.call('GET', KEYS[1]) == '0' then
  return -1
end
local moved = 0
for i = 6, #ARGV do
  local t = ARGV[5] .. ARGV[i]
  local v = redis.call('HMGET', t, 'status', 'history', 'queued_at')
  if v[1] == ${STATUS_TEXT.queued} then
    redis.call('HSET', t, 'status', ${STATUS_TEXT.pending}, 'reason', ARGV[4],
      'history', appendHistory(v[2], entry(ARGV[3], v[3], QUEUED, PENDING, ARGV[4])))
    moved = moved + 1
  end
end
return moved
`;

/**
 * keep-output: at the end of a run, the tail of its output replaces its live stream (Keys.taskOutputKept says
 * why), only while the record still names this run (its run token) and the stream's newest entry is this
 * run's: a later attempt (the task taken over) keeps its stream, and what it keeps at its end is its own.
 * KEYS[1] output stream  KEYS[2] kept output  KEYS[3] task record  ARGV[1] this run's newest entry id
 * ARGV[2] the tail  ARGV[3] retention ms  ARGV[4] the tail's offset in the output  ARGV[5] this run's token
 * ARGV[6] (only when the output started over: its stdout file truncated or rewritten) how many times it did
 * Returns 1 kept, 0 left alone.
 */
export const KEEP_OUTPUT = `
-- A later attempt has started (its start dropped this run's stream and began its own, whose first id may even
-- equal this run's last one within a millisecond): what it keeps is its own.
if redis.call('HGET', KEYS[3], 'run_token') ~= ARGV[5] then return 0 end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if not top[1] or top[1][1] ~= ARGV[1] then return 0 end
if ARGV[6] then redis.call('HSET', KEYS[2], 'data', ARGV[2], 'off', ARGV[4], 'run', ARGV[5], 'ep', ARGV[6])
else redis.call('HSET', KEYS[2], 'data', ARGV[2], 'off', ARGV[4], 'run', ARGV[5]) end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * find-locked-by: the jobs of a queue's active list whose BullMQ lock holds a token of one worker (its BullMQ id and
 * a colon, the prefix of every token it fetches with), with that token: what a fetch whose answer was lost left
 * active under this worker's lock (lost-fetches.ts). Only run after such a loss; reads each active job's lock.
 * KEYS[1] active list  ARGV[1] job key prefix (`<queue prefix>:<queue>:`)  ARGV[2] token prefix
 * Returns {jobId, token, jobId, token, ...}.
 */
export const FIND_LOCKED_BY = `
local out = {}
local prefix = ARGV[2]
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local token = redis.call('GET', ARGV[1] .. id .. ':lock')
  if token and string.sub(token, 1, #prefix) == prefix then
    out[#out + 1] = id
    out[#out + 1] = token
  end
end
return out
`;

/**
 * release-lock: deletes a lock only if it still holds this holder's token, so a holder whose lock expired
 * (and was taken by another) never frees the other's (the manager's sweep lease, the provisioning lock).
 * KEYS[1] lock key  ARGV[1] token the holder set
 * Returns 1 released, 0 not held by this token.
 */
export const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * renew-lock: extends a lock's time only if it still holds this holder's token (the provisioning lock, renewed
 * while its pass runs).
 * KEYS[1] lock key  ARGV[1] token  ARGV[2] time to live (ms)
 * Returns 1 renewed, 0 not held by this token (expired, or taken by another).
 */
export const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/**
 * guard-id-counter: the manager's look at a shard's id counter: guardRunId (the counter raised when Redis's run
 * id changed since the last id was handed out, unless a submit did it first), then the counter and the run id,
 * all on the node that holds the counter. On a Redis Cluster an INFO sent by the client goes to any node: the
 * manager compared the run ids of different masters from one sweep to the next, took each change for a failover
 * and raised a shard's counter by a million at almost every sweep (adversary 11 L1). A script runs where its key
 * lives. INFO refused (an ACL user without it): the counter alone, and the identity last kept (if any).
 * KEYS[1] next-task-id  KEYS[2] the counter's run-id key
 * Returns { counter, the Redis's identity (`<run id>:<replication id>`) or false, the counter before this call
 * raised it or false }.
 */
export const GUARD_ID_COUNTER = `${prelude('guardRunId')}
local raised = guardRunId(KEYS[1], KEYS[2])
-- The identity guardRunId has just read and kept (run id and replication id): INFO is not asked twice.
return { tonumber(redis.call('GET', KEYS[1]) or '0'), redis.call('GET', KEYS[2]), raised }
`;

/**
 * raise-counter: sets the id counter to ARGV[1] if it is lower (or missing), atomically with the submits'
 * INCRBYs (the manager's guard, and a submit whose new ids were found in use: store/id-counter.ts). Returns
 * the counter's value before (0: missing).
 * KEYS[1] next-task-id
 */
export const RAISE_COUNTER = `
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return v
`;

/**
 * merge-pool-spec: records a submit's dynamic pool spec so that the pool's allocations fit every call it was
 * given: the longest time, the most memory and CPUs of the stored spec and this one, the rest (account, QOS,
 * partition...) from this one. With the latest spec winning, a later, shorter call shrank the allocations
 * under a waiting longer one, which then never ran (adversary 7, H8).
 * KEYS[1] pool hash  ARGV[1] the spec (JSON)  ARGV[2] its time (ms)  ARGV[3] its memory (MB)  ARGV[4] its CPUs
 */
export const MERGE_POOL_SPEC = `
local spec = cjson.decode(ARGV[1])
local t, m, c = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'spec', 'spec_time_ms', 'spec_mem_mb', 'spec_cpu')
if v[1] then
  local old = cjson.decode(v[1])
  if tonumber(v[2] or '0') > t then spec.time = old.time; t = tonumber(v[2]) end
  if tonumber(v[3] or '0') > m then spec.mem = old.mem; m = tonumber(v[3]) end
  if tonumber(v[4] or '0') > c then spec.cpu = old.cpu; c = tonumber(v[4]) end
end
redis.call('HSET', KEYS[1], 'kind', 'dynamic', 'spec', cjson.encode(spec), 'spec_time_ms', t, 'spec_mem_mb', m,
  'spec_cpu', c)
-- Each merge is a new version: SHRINK_POOL_SPEC, computed from the calls queued before it, must not undo it.
redis.call('HINCRBY', KEYS[1], 'spec_seq', 1)
return 1
`;

/**
 * shrink-pool-spec: sets a dynamic pool's spec to what its remaining calls need, after the manager failed the
 * calls Slurm could not give an allocation to (oversizedCalls): the most of the pool's calls only grew, and one
 * impossible call kept failing every later one (adversary 25 F2). Only if no submit merged a spec since the
 * manager read the version (its call may be missing from the calls the new spec was computed from), and only
 * into an entry that still exists.
 * KEYS[1] pool hash  ARGV[1] spec_seq read  ARGV[2] the spec (JSON)  ARGV[3] time (ms)  ARGV[4] memory (MB)
 * ARGV[5] CPUs. Returns 1 written, 0 not (merged meanwhile, or the pool is gone).
 */
export const SHRINK_POOL_SPEC = `
if redis.call('HGET', KEYS[1], 'kind') ~= 'dynamic' then return 0 end
if (redis.call('HGET', KEYS[1], 'spec_seq') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'spec', ARGV[2], 'spec_time_ms', ARGV[3], 'spec_mem_mb', ARGV[4], 'spec_cpu', ARGV[5])
return 1
`;

/**
 * drop-pool-if-untouched: drops a pool's registry entry only if no submit touched the pool meanwhile (its
 * last activity is unchanged since the manager judged it idle).
 * KEYS[1] pool hash  KEYS[2] pools set  KEYS[3] pool's Slurm job registry
 * ARGV[1] last_activity the decision was made on ('' when the entry had none)  ARGV[2] pool name
 * Returns 1 dropped, 0 touched meanwhile (nothing done).
 */
export const DROP_POOL_IF_UNTOUCHED = `
-- A missing field is false in Lua, never equal to the '' the caller sends for it: compare as ''.
if (redis.call('HGET', KEYS[1], 'last_activity') or '') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
`;

/**
 * fold-pool-stats: moves a pool's counts in the stats hashes to another label and deletes its own fields, in
 * one step (no scrape sees them counted twice or not at all). Each key's fields are `<pool><suffix>`, the
 * suffixes its ARGV group lists; a suffix `:sum` (seconds, an older layout) is a float.
 * KEYS[1..n] the stats hashes  ARGV[1] pool  ARGV[2] label  ARGV[3..] per key: its suffix count, then its
 * suffixes (`''` for a field that is the pool name alone).
 * Returns the number of fields moved.
 */
export const FOLD_POOL_STATS = `
local moved, a = 0, 3
for k = 1, #KEYS do
  local n = tonumber(ARGV[a])
  for i = a + 1, a + n do
    local suffix = ARGV[i]
    local v = redis.call('HGET', KEYS[k], ARGV[1] .. suffix)
    if v then
      if suffix == ':sum' then redis.call('HINCRBYFLOAT', KEYS[k], ARGV[2] .. suffix, v)
      else redis.call('HINCRBY', KEYS[k], ARGV[2] .. suffix, v) end
      redis.call('HDEL', KEYS[k], ARGV[1] .. suffix)
      moved = moved + 1
    end
  end
  a = a + n + 1
end
return moved
`;

/**
 * read-tasks (read only): some fields of many task records as one JSON string. Twice as fast as pipelined
 * HGETALLs for the report's 100,000 records: one reply to parse instead of 40 strings each.
 * KEYS[1] any key of the shard, unread (it routes the script to the shard's node on a Redis Cluster)
 * ARGV[1] task key base  ARGV[2] number of fields  ARGV[3..] the fields, then the task ids
 * Returns a JSON array, per id the field values in the order asked (false where unset; all false: no record).
 */
export const READ_TASKS = `
local nf = tonumber(ARGV[2])
local fields = {}
for i = 3, 2 + nf do fields[#fields + 1] = ARGV[i] end
local out = {}
for i = 3 + nf, #ARGV do
  out[#out + 1] = redis.call('HMGET', ARGV[1] .. ARGV[i], unpack(fields))
end
return cjson.encode(out)
`;

/**
 * each-of: turns a script written for one item (`body`: its KEYS, and ARGV[1..argsPerItem] for the item)
 * into one that runs it for every item of a call, in order, with the same KEYS:
 * ARGV = item 1's ARGV, then item 2's, and so on. Returns the body's replies, in order.
 * A bulk submit adds its BullMQ jobs this way: BullMQ's own addStandardJob, one EVALSHA per few hundred
 * jobs of a queue rather than one per job (the per-command cost in Node and Redis was most of a bulk submit's).
 * The body becomes a function's (KEYS and ARGV its parameters): a body that returns early still returns
 * its reply for its item only.
 */
export function eachOf(body: string, argsPerItem: number): string {
  return `local function item(KEYS, ARGV)
${body}
end
local per = ${argsPerItem}
local out = {}
for i = 0, #ARGV / per - 1 do
  local argv = {}
  for j = 1, per do argv[j] = ARGV[i * per + j] end
  out[i + 1] = item(KEYS, argv)
end
return out
`;
}
