import { isIPv4, isIPv6 } from 'node:net';

import type { Logger } from '../logger.js';

/**
 * How long a wrong user or password waits for its 401. Until then that client's credentials are not checked:
 * one wrong answer in flight per client, so at most about 1000 / 300 ≈ 3 guesses a second per client.
 */
export const FAILED_LOGIN_DELAY_MS = 300;

/** At most one warning line per client in this window; it carries the counts since the client's last line. */
export const LOGIN_LOG_EVERY_MS = 60_000;

/** Clients remembered at once: memory stays bounded however many addresses guess (least recently seen go). */
export const MAX_LOGIN_CLIENTS = 10_000;

/**
 * Lines of their own for at most this many clients a window; past it, and for clients forgotten to keep the
 * bound, the counts go to one summed line a window: many addresses guessing (a botnet, an IPv6 host rotating
 * through its /48) made one line per request (review of s15).
 */
export const LOGIN_LINES_PER_WINDOW = 100;

export interface LoginLimitOptions {
  delayMs?: number;
  logEveryMs?: number;
  maxClients?: number;
}

interface ClientState {
  /** Until when a wrong answer of this client is pending: its credentials are not checked before. */
  busyUntil: number;
  /** Wrong credentials since the client's last warning line. */
  failures: number;
  /** Requests refused with 429 (credentials not checked) since the client's last warning line. */
  refused: number;
  /** When the client's last warning line was written. */
  loggedAt: number;
  /** When the client was last heard from. */
  seenAt: number;
}

/** The key every loopback address is limited under. */
export const LOOPBACK_CLIENT = 'loopback';

/**
 * The key a client is limited under: its address, an IPv4-mapped IPv6 address as IPv4, and an IPv6 address
 * by its /64 (one host commonly owns a whole /64, so per-address keys would give it 2^64 budgets), except a
 * link-local one (fe80::/10), by its whole address. Every loopback address (127.0.0.0/8, ::1, either mapped)
 * is one client: a local user can send from any of the 16 million addresses of 127.0.0.0/8, and made 600
 * guesses from 600 of them without one 429 (adversary 35 F3).
 */
export function clientKey(address: string): string {
  const a = address.replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  const v4 = mapped?.[1] ?? a;
  if (isIPv4(v4)) return v4.startsWith('127.') ? LOOPBACK_CLIENT : v4;
  if (!isIPv6(a)) return a;
  // An embedded IPv4 tail (::1.2.3.4) stands for two groups; only the first four groups matter here.
  const groups = (s: string | undefined): string[] =>
    s ? s.split(':').flatMap(g => (g.includes('.') ? ['0', '0'] : [g])) : [];
  const [left, right] = a.split('::');
  const l = groups(left);
  const r = groups(right);
  const full = [...l, ...Array<string>(Math.max(0, 8 - l.length - r.length)).fill('0'), ...r];
  const n = full.map(g => parseInt(g, 16));
  // ::1, and 127.0.0.0/8 mapped in hexadecimal (::ffff:7f00:1).
  if (
    n.slice(0, 5).every(g => g === 0) &&
    ((n[5] === 0 && n[6] === 0 && n[7] === 1) || (n[5] === 0xffff && (n[6] ?? 0) >> 8 === 0x7f))
  )
    return LOOPBACK_CLIENT;
  // Link-local (fe80::/10): every client on the link shares fe80::/64, so one guesser would lock them all out;
  // its clients are told apart by their whole address.
  const first = parseInt(full[0] ?? '0', 16);
  if (first >= 0xfe80 && first <= 0xfebf) return full.map(g => parseInt(g, 16).toString(16)).join(':');
  return `${full
    .slice(0, 4)
    .map(g => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/**
 * Wrong credentials, limited per client (adversary 21 F2: a delay alone let 400 parallel connections of one
 * client make 1,250 guesses a second). While a client's wrong answer is pending, its further requests with
 * credentials are refused (429) WITHOUT checking them: right ones too, since a 429 given only to wrong
 * credentials would itself tell the guesser "wrong" at full speed. Right credentials never count and never
 * wait otherwise, and other clients are not affected. Counts go to a warning line per client at most once per
 * `logEveryMs` (the first failure at once, later ones summed), so a flood is one line a minute with its size.
 */
export class LoginLimiter {
  readonly delayMs: number;
  private readonly logEveryMs: number;
  private readonly maxClients: number;
  /** In order of last contact (re-inserted on each), so the first entry is the one to evict. */
  private readonly clients = new Map<string, ClientState>();
  private sweeper: NodeJS.Timeout | undefined;
  /** Lines written in the window that began at `windowAt` (LOGIN_LINES_PER_WINDOW). */
  private lines = 0;
  private windowAt = -Infinity;
  /** Counts of the clients that got no line of their own in this window, or were forgotten: summed. */
  private readonly summed = { clients: 0, failures: 0, refused: 0 };

  constructor(
    private readonly logger: Logger | undefined,
    opts: LoginLimitOptions = {},
  ) {
    this.delayMs = opts.delayMs ?? FAILED_LOGIN_DELAY_MS;
    this.logEveryMs = opts.logEveryMs ?? LOGIN_LOG_EVERY_MS;
    this.maxClients = opts.maxClients ?? MAX_LOGIN_CLIENTS;
  }

  /** Milliseconds until the client's credentials may be checked; when above 0 the request is counted refused. */
  refusal(address: string): number {
    const key = clientKey(address);
    const state = this.clients.get(key);
    const now = Date.now();
    if (!state || state.busyUntil <= now) return 0;
    state.refused++;
    this.touch(key, state, now);
    return state.busyUntil - now;
  }

  /** A wrong user or password: the client is busy for `delayMs`, and the failure is counted (and maybe logged). */
  failed(address: string): void {
    const key = clientKey(address);
    const now = Date.now();
    const state = this.clients.get(key) ?? {
      busyUntil: 0,
      failures: 0,
      refused: 0,
      loggedAt: -Infinity,
      seenAt: now,
    };
    state.busyUntil = now + this.delayMs;
    state.failures++;
    this.touch(key, state, now);
    if (now - state.loggedAt >= this.logEveryMs) this.log(key, state, now);
  }

  /** Clients remembered now (for tests of the bound). */
  get size(): number {
    return this.clients.size;
  }

  private touch(key: string, state: ClientState, now: number): void {
    state.seenAt = now;
    this.clients.delete(key);
    this.clients.set(key, state);
    while (this.clients.size > this.maxClients) {
      const [oldKey, old] = this.clients.entries().next().value as [string, ClientState];
      // Its counts are kept (summed) before it is forgotten, so no failure goes uncounted.
      if (old.failures > 0 || old.refused > 0) this.sum(old, now);
      this.clients.delete(oldKey);
    }
    // One timer for all clients, only while there are any: it writes counts nobody's next failure would, and
    // forgets clients idle for a window (their next failure is then logged at once: still one line a window).
    if (!this.sweeper) {
      this.sweeper = setInterval(() => this.sweep(), Math.max(1, this.logEveryMs / 2)).unref();
    }
  }

  private sweep(): void {
    const now = Date.now();
    this.newWindow(now);
    for (const [key, state] of this.clients) {
      const pending = state.failures > 0 || state.refused > 0;
      if (pending && now - state.loggedAt >= this.logEveryMs) this.log(key, state, now);
      else if (!pending && now - state.seenAt >= this.logEveryMs) this.clients.delete(key);
    }
    if (this.clients.size === 0 && this.summed.clients === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** A window past its end begins anew, the counts summed in the one before written as one line. */
  private newWindow(now: number): void {
    if (now - this.windowAt < this.logEveryMs) return;
    this.windowAt = now;
    this.lines = 0;
    const { clients, failures, refused } = this.summed;
    if (clients === 0) return;
    this.logger?.warn(
      { clients, failures, refused },
      `wrong user or password from ${clients} more clients (summed: more than ${LOGIN_LINES_PER_WINDOW} clients a window, or forgotten)`,
    );
    Object.assign(this.summed, { clients: 0, failures: 0, refused: 0 });
  }

  private log(key: string, state: ClientState, now: number): void {
    this.newWindow(now);
    if (this.lines >= LOGIN_LINES_PER_WINDOW) {
      this.sum(state, now);
      return;
    }
    this.lines++;
    this.logger?.warn(
      { client: key, failures: state.failures, refused: state.refused },
      'wrong user or password',
    );
    counted(state, now);
  }

  private sum(state: ClientState, now: number): void {
    this.summed.clients++;
    this.summed.failures += state.failures;
    this.summed.refused += state.refused;
    counted(state, now);
  }
}

/** A client's counts are written (in its own line or the summed one): they start again from now. */
function counted(state: ClientState, now: number): void {
  state.failures = 0;
  state.refused = 0;
  state.loggedAt = now;
}
