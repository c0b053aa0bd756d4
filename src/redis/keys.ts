/** How long the end of a task stays in its pool's recent-ends index (the dashboard's pool page: one hour). */
export const RECENT_ENDS_WINDOW_MS = 3_600_000;
/** The recent-ends index is trimmed to its window when an end brings its size to a multiple of this. */
export const RECENT_ENDS_TRIM_EVERY = 64;

/**
 * The one place where Redis key and queue names are built. Every key starts with the prefix, whose
 * `{...}` hash tag puts all of JTM (BullMQ queues included) in one Redis Cluster slot, so Lua scripts
 * may touch any of them atomically.
 */
export class Keys {
  /** BullMQ's prefix: queues live under `<prefix>:q:<pool>:…`, apart from JTM's own keys. */
  readonly queuePrefix: string;
  readonly nextTaskId: string;
  /** The run id of the Redis that handed out the shard's last ids (guardRunId in scripts.ts). */
  readonly idCounterRunId: string;
  /** Sorted set of non-final task ids scored by submit time (what the manager reconciles). */
  readonly activeTasks: string;
  /** Sorted set of worker ids scored by last heartbeat (ms). */
  readonly workers: string;
  /** Set of known pool names. */
  readonly pools: string;
  readonly managerAlive: string;
  readonly managerStats: string;
  /** Hash manager id → JSON of each running manager (host, pid, last seen, its Slurm client's failure if any). */
  readonly managerPresence: string;
  /** Held by the manager that is sweeping, so that two sweeps never overlap. */
  readonly managerLease: string;
  /** Hash pool → tasks submitted (ever): a counter in Redis, so that every manager exports the same value. */
  readonly statsSubmitted: string;
  /** Hash `<pool>:<status name>` → tasks that reached that final status (ever). */
  readonly statsFinished: string;
  /** Histograms (task-counters.ts) of the run time and queue wait of finished tasks, per pool. */
  readonly statsDuration: string;
  readonly statsQueueWait: string;

  constructor(readonly prefix: string) {
    this.queuePrefix = `${prefix}:q`;
    this.nextTaskId = `${prefix}:next-task-id`;
    this.idCounterRunId = `${prefix}:next-task-id:run-id`;
    this.activeTasks = `${prefix}:tasks:active`;
    this.workers = `${prefix}:workers`;
    this.pools = `${prefix}:pools`;
    this.managerAlive = `${prefix}:manager:alive`;
    this.managerStats = `${prefix}:manager:stats`;
    this.managerPresence = `${prefix}:manager:presence`;
    this.managerLease = `${prefix}:manager:lease`;
    this.statsSubmitted = `${this.statsBase}submitted`;
    this.statsFinished = `${this.statsBase}finished`;
    this.statsDuration = `${this.statsBase}duration`;
    this.statsQueueWait = `${this.statsBase}queue-wait`;
  }

  /** Prefix of the stats keys: the Lua scripts that end a task count it in `finished`, `duration`, `queue-wait`. */
  get statsBase(): string {
    return `${this.prefix}:stats:`;
  }
  /** Prefix that a task id is appended to (Lua scripts build task keys from it after INCR). */
  get taskBase(): string {
    return `${this.prefix}:task:`;
  }
  task(id: number | string): string {
    return `${this.prefix}:task:${id}`;
  }
  taskEvents(id: number | string): string {
    return `${this.prefix}:task:${id}:events`;
  }
  taskResources(id: number | string): string {
    return `${this.prefix}:task:${id}:resources`;
  }
  /** One worker of a host prunes a log dir per interval (log-dir-prune.ts). */
  logDirPruneLease(host: string, logDir: string): string {
    return `${this.prefix}:log-dir-prune:${host}:${logDir}`;
  }
  /**
   * A running task's output, copied from its stdout file (a stream: `data`, `off`, where it lies in the output,
   * and `ep`, from the first time the file was seen truncated or rewritten: how many times the output started
   * over, its offsets starting again at 0).
   */
  taskOutput(id: number | string): string {
    return `${this.prefix}:task:${id}:output`;
  }
  /**
   * What is kept of a task's output once its run has ended (a hash: `data`, the last JTM_OUTPUT_KEEP_BYTES,
   * `off`, where they start in the output, `run`, the run token of the run that wrote them, and `ep` as the stream's
   * entries). The live stream (taskOutput) is dropped then: a
   * stream's first node is allocated at 4 KB, so 2 bytes of output cost 4.7 KB of Redis for the record's life.
   */
  taskOutputKept(id: number | string): string {
    return `${this.prefix}:task:${id}:output-kept`;
  }
  /**
   * Commit key of one submit (`submit:<submit id>`): written once every record and job of the submit is in
   * Redis. A queued task whose submit has no commit key is not started (a submit killed half-way runs nothing).
   */
  submit(submitId: string): string {
    return `${this.prefix}:submit:${submitId}`;
  }
  get submitBase(): string {
    return `${this.prefix}:submit:`;
  }
  /**
   * One create-tasks call's answer (`create-call:<token>`), kept a while: the same call sent again (a client
   * resends a command whose answer a reset lost) gets it instead of a second block of records.
   */
  createCall(token: string): string {
    return `${this.prefix}:create-call:${token}`;
  }
  worker(id: string): string {
    return `${this.prefix}:worker:${id}`;
  }
  get workerBase(): string {
    return `${this.prefix}:worker:`;
  }
  /** Exists while the worker heartbeats (TTL = missed beats × interval). */
  workerAlive(id: string): string {
    return `${this.prefix}:worker:${id}:alive`;
  }
  /** Ids of the tasks the worker is running. */
  workerTasks(id: string): string {
    return `${this.prefix}:worker:${id}:tasks`;
  }
  /** Pub/sub channel on which a worker hears kill/drain/stop requests addressed to it. */
  workerControl(id: string): string {
    return `${this.prefix}:worker:${id}:control`;
  }
  pool(name: string): string {
    return `${this.prefix}:pool:${name}`;
  }
  /**
   * Sorted set of the pool's task ids that ended within RECENT_ENDS_WINDOW_MS, scored by end time: written by
   * the end of every task (scripts.ts finalize), trimmed to the window every RECENT_ENDS_TRIM_EVERY ends; the pool
   * page reads the window by score, instead of every task record.
   */
  poolRecentEnds(name: string): string {
    return `${this.statsBase}recent-ends:${name}`;
  }
  poolSlurmJobs(name: string): string {
    return `${this.prefix}:pool:${name}:slurm-jobs`;
  }
  /** sbatch failures of a pool: hash failures, retry_at, last_error. */
  poolSlurmState(name: string): string {
    return `${this.prefix}:pool:${name}:slurm-state`;
  }
  /** Held by the one manager that provisions Slurm allocations at a time (no double sbatch). */
  get slurmProvisionLock(): string {
    return `${this.prefix}:slurm:provision-lock`;
  }
  /** Pub/sub channel for every worker of a pool (stop requests from remove-pool). */
  poolControl(name: string): string {
    return `${this.prefix}:pool:${name}:control`;
  }
  /** Pub/sub channel on which submit announces work for dynamic pools (managers provision at once). */
  get provisionRequests(): string {
    return `${this.prefix}:manager:provision`;
  }
  /** BullMQ queue name of a pool: the pool name itself (validated to be key-safe). */
  poolQueue(pool: string): string {
    return pool;
  }
  /** BullMQ's hash of one job of a pool queue (BullMQ's layout: `<queue prefix>:<queue>:<job id>`). */
  poolJob(pool: string, jobId: string): string {
    return `${this.queuePrefix}:${this.poolQueue(pool)}:${jobId}`;
  }

  /** One of BullMQ's lists or sets of a pool queue (`wait`, `active`, `delayed`, …: BullMQ's own names). */
  poolQueueKey(pool: string, part: string): string {
    return `${this.queuePrefix}:${this.poolQueue(pool)}:${part}`;
  }
  /**
   * The site's shard count (JTM_SHARDS), kept under JTM_PREFIX itself: written on first use, so that a
   * process started with another count is refused (its ids would name the wrong shards). shards.ts.
   */
  get shardCount(): string {
    return `${this.prefix}:shards`;
  }
  /** Control queue of the manager's job scheduler; `_` cannot start a pool name. */
  get managerQueue(): string {
    return '_manager';
  }
}
