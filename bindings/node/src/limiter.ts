// Limiter: a managed xg_limiter handle, of this process or shared through Redis. Every operation returns a Promise;
// on a shared limiter it runs on a worker thread (pool.ts), so a store round trip never blocks the event loop. Waits
// follow the library's wait policy step by step (xg_limiter_acquire_until with max_block_ms 0) and sleep what it
// says with setTimeout, ending at once on an AbortSignal or `interrupt()`.

import { Classification } from './classify';
import { bool, id64, tenantBytes, u32, uint, utf8 } from './args';
import {
  AbortError,
  errorFor,
  InvalidArgumentError,
  LimiterInterruptedError,
  PermitTimeoutError,
  UnknownPermitError,
  XeroGuardError,
} from './errors';
import {
  check,
  fn,
  XG_CLOCK_MANUAL,
  XG_CLOCK_MONOTONIC,
  XG_MAX_KEY_PREFIX_BYTES,
  XG_MAX_STORE_DEADLINE_MS,
  XG_NO_DEADLINE,
  XG_WAIT_OUTCOME_ASK_AGAIN,
  XG_WAIT_OUTCOME_GRANTED,
  sizeOf,
} from './native';
import {
  CLimits,
  Handle,
  OpName,
  OpResult,
  OPS,
  RawDecision,
  RawStats,
  RawStep,
  RedisSettings,
  WaitState,
} from './ops';
import { runOffThread } from './pool';
import { durationWords, refusalWords } from './classify';
import {
  Logger,
  logs,
  Stats,
  statsFrom,
  tenantForLog,
  waitEndedLine,
  waitStartedLine,
  Watch,
  writeLog,
} from './stats';
import { FAILURE_POLICY, FailurePolicy, REASON, Reason } from './vocabulary';

/** At most `limit` calls in any `windowMs`, widened by `marginMs`; `limit` 0 disables the window. */
export interface WindowLimit {
  limit: number;
  windowMs: number;
  marginMs: number;
}

/** Mirrors xg_limits. */
export interface Limits {
  tenantMinute: WindowLimit;
  tenantDay: WindowLimit;
  /** Calls in flight per tenant (0 = unlimited). */
  tenantConcurrency: number;
  appMinute: WindowLimit;
  /** A permit not released within this time expires. */
  permitTimeoutMs: number;
  /** The most tenants tracked at once (0 = no cap). */
  maxTenants: number;
}

/** Limits to create a limiter with: any field left out takes the library's default (`defaultLimits()`). */
export interface LimitsInput {
  tenantMinute?: WindowLimitInput;
  tenantDay?: WindowLimitInput;
  tenantConcurrency?: number;
  appMinute?: WindowLimitInput;
  permitTimeoutMs?: number;
  maxTenants?: number;
}

export interface WindowLimitInput {
  limit: number;
  windowMs: number;
  /** 0 when left out. */
  marginMs?: number;
}

type RawLimits = Record<string, unknown> & {
  tenant_minute: Record<string, number>;
  tenant_day: Record<string, number>;
  app_minute: Record<string, number>;
};

function fromC(c: RawLimits): Limits {
  const w = (x: Record<string, number>): WindowLimit => ({
    limit: Number(x.limit),
    windowMs: Number(x.window_ms),
    marginMs: Number(x.margin_ms),
  });
  return {
    tenantMinute: w(c.tenant_minute),
    tenantDay: w(c.tenant_day),
    tenantConcurrency: Number(c.tenant_concurrency),
    appMinute: w(c.app_minute),
    permitTimeoutMs: Number(c.permit_timeout_ms),
    maxTenants: Number(c.max_tenants),
  };
}

/**
 * Xero's limits with margins (xg_limits_default): 60/60 s (+500 ms) and 5000/24 h (+60 s) per tenant, 5 in flight,
 * 10,000/60 s (+500 ms) per app.
 */
export function defaultLimits(): Limits {
  return fromC(fn.xg_limits_default!() as RawLimits);
}

/** Xero's limits exactly, with no margins (xg_limits_exact). */
export function exactLimits(): Limits {
  return fromC(fn.xg_limits_exact!() as RawLimits);
}

function windowArg(value: WindowLimitInput | undefined, fallback: WindowLimit, name: string): WindowLimit {
  if (value === undefined) return fallback;
  if (value === null || typeof value !== 'object')
    throw new InvalidArgumentError(`${name} must be { limit, windowMs, marginMs? }`);
  return {
    limit: u32(value.limit, `${name}.limit`),
    windowMs: uint(value.windowMs, `${name}.windowMs`),
    marginMs: value.marginMs === undefined ? 0 : uint(value.marginMs, `${name}.marginMs`),
  };
}

/** Complete, checked limits: the fields given, the library's defaults for the rest. */
export function limitsFrom(input: LimitsInput | undefined): Limits {
  const d = defaultLimits();
  if (input === undefined) return d;
  if (input === null || typeof input !== 'object') throw new InvalidArgumentError('limits must be an object');
  const known = new Set(Object.keys(d));
  for (const key of Object.keys(input)) {
    if (!known.has(key))
      throw new InvalidArgumentError(`unknown limits field '${key}' (known: ${[...known].join(', ')})`);
  }
  return {
    tenantMinute: windowArg(input.tenantMinute, d.tenantMinute, 'tenantMinute'),
    tenantDay: windowArg(input.tenantDay, d.tenantDay, 'tenantDay'),
    tenantConcurrency:
      input.tenantConcurrency === undefined ? d.tenantConcurrency : u32(input.tenantConcurrency, 'tenantConcurrency'),
    appMinute: windowArg(input.appMinute, d.appMinute, 'appMinute'),
    permitTimeoutMs:
      input.permitTimeoutMs === undefined ? d.permitTimeoutMs : uint(input.permitTimeoutMs, 'permitTimeoutMs'),
    maxTenants: input.maxTenants === undefined ? d.maxTenants : u32(input.maxTenants, 'maxTenants'),
  };
}

function toC(l: Limits): CLimits {
  const w = (x: WindowLimit) => ({ limit: x.limit, window_ms: x.windowMs, margin_ms: x.marginMs });
  return {
    struct_size: sizeOf('xg_limits'),
    tenant_minute: w(l.tenantMinute),
    tenant_day: w(l.tenantDay),
    tenant_concurrency: l.tenantConcurrency,
    app_minute: w(l.appMinute),
    permit_timeout_ms: l.permitTimeoutMs,
    max_tenants: l.maxTenants,
  };
}

/** A tenant's own limits (xg_tenant_limits); windows and margins stay the limiter's. */
export interface TenantLimits {
  minuteLimit: number;
  dayLimit: number;
  concurrency: number;
}

export type Clock = 'monotonic' | 'manual';

export interface LimiterOptions {
  /** 'monotonic' (the default) or 'manual': starts at 0 and moves only with advance/setNow (tests). */
  clock?: Clock;
  /**
   * Share windows, permits, blocks and limits through Redis with every process (Node, Python, C#, C) using the same
   * `keyPrefix`: `redis://host:6379`, `rediss://…` (TLS), `redis+unix:///path.sock`, `redis+cluster://h:p,h:p`.
   */
  redisUrl?: string;
  /** Required with redisUrl: one per Xero app. */
  keyPrefix?: string;
  /** The longest one store operation may take, in ms (default 250, at most 10,000). */
  deadlineMs?: number;
  /** After 3 failures in a row, the store is not asked again for this long (ms; default 1000); then one probe goes. */
  breakerCooldownMs?: number;
  /**
   * While the store cannot be reached: 'closed' refuses (the default), 'open' grants, 'local' uses this process's
   * share.
   */
  onStoreError?: FailurePolicy;
  /** For 'local': how many processes share the limits (each keeps limit / workers, at least 1). */
  workers?: number;
  /**
   * Write these limits into the store even if it holds others. Without it (or `adoptStoredLimits`), limits that
   * differ from the stored ones fail with LimitsDifferError, naming both.
   */
  replaceLimits?: boolean;
  /** Pace by the limits stored for the prefix when they differ from these (`limiter.limits` then reports them). */
  adoptStoredLimits?: boolean;
  /** A PEM file of certificate authorities to trust for rediss:// (the system's by default). */
  tlsCaFile?: string;
  /**
   * Where the limiter writes (console-compatible; every method optional): each wait's start and end (debug: tenant,
   * reason, how long it lasted and how it ended), the failure policy deciding while the shared store is out of reach
   * (warn, once per outage, then a count about once a minute; info when the store answers again) and the store's
   * breaker (info). Without it, only the warnings are written, as process warnings. A guard's own `logger` takes the
   * lines of the calls it makes.
   */
  logger?: Logger;
}

/**
 * The answer of acquire/peek: granted (with `permit` to release; 0n for tenantless calls), or refused for `waitMs`
 * because of `reason`. `fallback` is null when the limiter's state decided; for a limiter sharing its state through
 * Redis, the failure policy that decided because the store could not be reached.
 */
export interface Decision {
  granted: boolean;
  permit: bigint;
  waitMs: number;
  reason: Reason | null;
  fallback: FailurePolicy | null;
}

/** A booked slot: the call counts from now on at `atMs` (limiter clock), `waitMs` from now. */
export interface Reservation {
  id: bigint;
  atMs: number;
  waitMs: number;
}

export interface WaitOptions {
  /** How long to wait at most, on the limiter's clock; left out, as long as needed. */
  timeoutMs?: number;
  /** Ends the wait at once, with an AbortError. */
  signal?: AbortSignal;
}

/** What `observe` takes: a Classification, or a raw HTTP response as `curl -i` saves it. */
export type Observed = Classification | Uint8Array | string;

const CLOCKS: Record<Clock, number> = { monotonic: XG_CLOCK_MONOTONIC, manual: XG_CLOCK_MANUAL };
const STORE_OPTIONS = [
  'keyPrefix',
  'deadlineMs',
  'breakerCooldownMs',
  'onStoreError',
  'workers',
  'replaceLimits',
  'adoptStoredLimits',
  'tlsCaFile',
];
/** The options of `Limiter.inspect`: where the store is; nothing it would decide or write. */
export type InspectOptions = Pick<LimiterOptions, 'clock' | 'deadlineMs' | 'tlsCaFile' | 'logger'>;

/** Marks the options of a limiter opened by `Limiter.inspect` (a symbol: never one of the user's option names). */
const INSPECT = Symbol('inspect');

const KNOWN_OPTIONS = new Set(['clock', 'redisUrl', 'logger', ...STORE_OPTIONS]);
/** @internal setTimeout holds at most 2^31-1 ms: a longer sleep is taken in pieces (or asks the library again). */
export const MAX_TIMER_MS = 0x7fff_ffff;

const redisDefaults = fn.xg_redis_options_default!() as Record<string, unknown>;

function redisSettings(options: LimiterOptions): RedisSettings {
  const url = options.redisUrl;
  if (typeof url !== 'string' || url.length === 0)
    throw new InvalidArgumentError('redisUrl must be a non-empty string');
  utf8(url, 'redisUrl');
  if (options.keyPrefix === undefined) {
    throw new InvalidArgumentError(
      'keyPrefix is required with redisUrl: every process sharing one prefix (one per Xero app) shares its limits',
    );
  }
  const prefix = utf8(options.keyPrefix, 'keyPrefix');
  if (prefix.length === 0 || prefix.length > XG_MAX_KEY_PREFIX_BYTES) {
    throw new InvalidArgumentError(
      `keyPrefix must be 1 to ${XG_MAX_KEY_PREFIX_BYTES} bytes of UTF-8, got ${prefix.length}`,
    );
  }
  const deadlineMs =
    options.deadlineMs === undefined
      ? Number(redisDefaults.deadline_ms)
      : uint(options.deadlineMs, 'deadlineMs', XG_MAX_STORE_DEADLINE_MS);
  if (deadlineMs === 0)
    throw new InvalidArgumentError('deadlineMs must be at least 1: every store operation needs some time');
  const policy = options.onStoreError ?? FAILURE_POLICY.word(Number(redisDefaults.on_store_error)) ?? 'closed';
  if (!FAILURE_POLICY.has(policy)) {
    throw new InvalidArgumentError(`onStoreError must be 'closed', 'open' or 'local', got ${String(policy)}`);
  }
  const workers = options.workers === undefined ? Number(redisDefaults.workers) : u32(options.workers, 'workers');
  if (workers === 0) throw new InvalidArgumentError('workers must be at least 1');
  const replaceLimits = options.replaceLimits === undefined ? false : bool(options.replaceLimits, 'replaceLimits');
  const adoptStoredLimits =
    options.adoptStoredLimits === undefined ? false : bool(options.adoptStoredLimits, 'adoptStoredLimits');
  if (replaceLimits && adoptStoredLimits) {
    throw new InvalidArgumentError(
      'replaceLimits and adoptStoredLimits exclude each other: set one (whose limits win) or neither',
    );
  }
  let tlsCaFile: string | null = null;
  if (options.tlsCaFile !== undefined) {
    if (utf8(options.tlsCaFile, 'tlsCaFile').length === 0)
      throw new InvalidArgumentError('tlsCaFile must not be empty');
    tlsCaFile = options.tlsCaFile;
  }
  return {
    url,
    keyPrefix: options.keyPrefix,
    deadlineMs,
    breakerCooldownMs:
      options.breakerCooldownMs === undefined
        ? Number(redisDefaults.breaker_cooldown_ms)
        : uint(options.breakerCooldownMs, 'breakerCooldownMs'),
    onStoreError: FAILURE_POLICY.code(policy),
    workers,
    replaceLimits,
    adoptStoredLimits,
    tlsCaFile,
  };
}

function decision(raw: RawDecision): Decision {
  return {
    granted: raw.granted,
    permit: raw.permit,
    waitMs: raw.waitMs,
    reason: REASON.word(raw.reason),
    fallback: FAILURE_POLICY.word(raw.fallback),
  };
}

function stepDecision(step: RawStep): Decision {
  const granted = step.outcome === XG_WAIT_OUTCOME_GRANTED;
  return {
    granted,
    permit: granted ? step.permit : 0n,
    waitMs: granted ? 0 : step.waitMs,
    reason: granted ? null : REASON.word(step.reason),
    fallback: FAILURE_POLICY.word(step.fallback),
  };
}

function unwrap<T>(result: OpResult<T>): T {
  if (result.ok) return result.value;
  throw errorFor(result.status, result.statusName, result.message);
}

function abortError(signal: AbortSignal): AbortError {
  return new AbortError('the wait for a permit was aborted', { cause: signal.reason });
}

/** One wait's link to the limiter: woken when this process frees capacity or the limiter is interrupted or closed. */
interface Waiter {
  woken: boolean;
  wake: (() => void) | null;
}

/** @internal What the guards add to a wait: a hook on its first refusal. */
export type OnRefusal = (refusal: Decision) => void;

/**
 * Paces calls per tenant and per app. Every tenant-taking call names its tenant; a tenantless call passes TENANTLESS
 * (''). Close it (or `using`/`await using` where the runtime has them) to free the native handle.
 *
 * Shared through Redis: `new Limiter(limits, { redisUrl, keyPrefix })` keeps the windows, permits, blocks and limits
 * in the store, shared by every process and machine using the same prefix. It connects once, off the event loop:
 * `await limiter.ready` (or `Limiter.connect(...)`) to learn at once whether it was created; every operation
 * waits for that and fails with its error otherwise. A store that cannot be reached fails creation under the
 * `closed` policy; under `open` and `local` the limiter is created and its policy decides (flagged) until the
 * store answers.
 */
export class Limiter {
  readonly clock: Clock;
  /** Resolves once the native limiter exists; for a shared one, rejects when the store could not be reached. */
  readonly ready: Promise<void>;
  #handle: Handle | null = null;
  #limits: Readonly<Limits>;
  #settings: RedisSettings | null;
  #closed = false;
  #users = 0;
  #waiters = new Set<Waiter>();
  #logger: Logger | undefined;
  #watch = new Watch();

  constructor(limits?: LimitsInput, options: LimiterOptions = {}) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
    for (const key of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(key)) throw new InvalidArgumentError(`unknown limiter option '${key}'`);
    }
    const clock = options.clock ?? 'monotonic';
    if (clock !== 'monotonic' && clock !== 'manual') {
      throw new InvalidArgumentError(`clock must be 'monotonic' or 'manual', got ${String(clock)}`);
    }
    this.clock = clock;
    if (options.logger !== undefined && (options.logger === null || typeof options.logger !== 'object')) {
      throw new InvalidArgumentError('logger must be an object with debug, info and warn methods (console will do)');
    }
    this.#logger = options.logger;
    this.#limits = Object.freeze(limitsFrom(limits));
    const c = toC(this.#limits);
    if (options.redisUrl === undefined) {
      const given = STORE_OPTIONS.filter((name) => (options as Record<string, unknown>)[name] !== undefined);
      if (given.length > 0) {
        throw new InvalidArgumentError(`${given.join(', ')} only apply with redisUrl (a limiter shared through Redis)`);
      }
      this.#settings = null;
      this.#handle = unwrap(OPS.newLimiter(c, CLOCKS[clock]));
      this.ready = Promise.resolve();
    } else {
      const settings = redisSettings(options);
      this.#settings = settings;
      // Connecting may take up to the store deadline: on a worker thread, like every store operation.
      this.#users++;
      const readOnly = (options as { [INSPECT]?: boolean })[INSPECT] === true;
      const created = (
        readOnly
          ? runOffThread<Handle>('inspectRedis', [settings, CLOCKS[clock]])
          : runOffThread<Handle>('newRedis', [c, settings, CLOCKS[clock]])
      )
        .then((result) => {
          this.#handle = unwrap(result);
          // The limits it paces by: the stored ones (they differ from those given only when adopted).
          this.#limits = Object.freeze(fromC(unwrap(OPS.limits(this.#handle)) as RawLimits));
        })
        .finally(() => this.#leave());
      created.catch(() => undefined); // seen by whoever awaits `ready` or calls an operation; never unhandled
      this.ready = created;
    }
  }

  /**
   * A read-only look at the limiter shared through `keyPrefix` (what `xeroguard snapshot` uses): it writes nothing,
   * not even limits to an empty prefix. `snapshot` and `peek` answer (NoStoredLimitsError on a prefix that holds
   * none); every operation that would write rejects with InvalidArgumentError saying the limiter only reads;
   * `limits` are the stored ones (the defaults when there are none). Resolves once the store answered.
   */
  static async inspect(redisUrl: string, keyPrefix: string, options: InspectOptions = {}): Promise<Limiter> {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
    for (const key of Object.keys(options)) {
      if (!['clock', 'deadlineMs', 'tlsCaFile', 'logger'].includes(key)) {
        throw new InvalidArgumentError(`unknown inspect option '${key}'`);
      }
    }
    const given = { ...options, redisUrl, keyPrefix, [INSPECT]: true } as LimiterOptions;
    return Limiter.connect(undefined, given);
  }

  /** A limiter whose store has answered: `new Limiter(...)` then `await limiter.ready`. */
  static async connect(limits?: LimitsInput, options?: LimiterOptions): Promise<Limiter> {
    const limiter = new Limiter(limits, options);
    try {
      await limiter.ready;
    } catch (error) {
      limiter.close();
      throw error;
    }
    return limiter;
  }

  /**
   * The limits this limiter paces by: those given, or for a shared one once `ready`, those stored for its prefix
   * (the stored ones rather than those given after `adoptStoredLimits`; a limiter made while the store was down
   * adopts them when the store first answers). Read from the library each time (no store call).
   */
  get limits(): Readonly<Limits> {
    if (this.#settings !== null && this.#handle !== null && !this.#closed) {
      this.#limits = Object.freeze(fromC(this.#direct<Record<string, unknown>>('limits') as RawLimits));
    }
    return this.#limits;
  }

  /** True for a limiter whose state lives in Redis. */
  get shared(): boolean {
    return this.#settings !== null;
  }

  get closed(): boolean {
    return this.#closed;
  }

  // Lifetime: calls count themselves in and out; the handle is freed by close() or by the last call out, so it is
  // never freed under a call in progress (xg_limiter_free must not race with other calls).

  #enter(): Handle {
    if (this.#closed) throw new XeroGuardError('the limiter is closed');
    this.#users++;
    return this.#handle!;
  }

  #leave(): void {
    this.#users--;
    if (this.#closed && this.#users === 0) this.#free();
  }

  #free(): void {
    const handle = this.#handle;
    this.#handle = null;
    if (handle !== null) fn.xg_limiter_free!(handle);
  }

  /** Runs a native operation: here for a limiter of this process, on a worker thread for a shared one. */
  async #op<T>(op: OpName, ...args: unknown[]): Promise<T> {
    if (this.#settings === null) return this.#direct<T>(op, ...args);
    await this.ready;
    const handle = this.#enter();
    try {
      return unwrap(await runOffThread<T>(op, [handle, ...args]));
    } finally {
      this.#leave();
    }
  }

  /** An operation on the calling thread for what never touches the store (the statistics). */
  #direct<T>(op: OpName, ...args: unknown[]): T {
    return this.#using((handle) => unwrap((OPS[op] as (...a: unknown[]) => OpResult<T>)(handle, ...args)));
  }

  /** A call on the calling thread for what never touches the store (the clock, interrupt). */
  #local(call: (handle: Handle) => number, name: string): void {
    this.#using((handle) => check(call(handle), name));
  }

  /** Runs `run` on the handle, on the calling thread, counted in and out (refused before a shared one connects). */
  #using<T>(run: (handle: Handle) => T): T {
    if (this.#handle === null && !this.#closed)
      throw new XeroGuardError('the limiter is not connected yet: await limiter.ready');
    const handle = this.#enter();
    try {
      return run(handle);
    } finally {
      this.#leave();
    }
  }

  /**
   * Frees the native handle, at once or when the last operation in progress returns (`interrupt()` first to end
   * waits). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#users === 0) this.#free();
    this.#wake();
  }

  // Clock (the limiter's own: never the store).

  /** The limiter's clock, in ms (a manual clock starts at 0). */
  now(): number {
    const out = [0];
    this.#local((h) => fn.xg_limiter_now_ms!(h, out) as number, 'xg_limiter_now_ms');
    return Number(out[0]);
  }

  /** Moves a manual clock forward (WrongClockError on a monotonic limiter), waking waits. */
  advance(ms: number): void {
    const by = uint(ms, 'ms');
    this.#local((h) => fn.xg_limiter_advance_ms!(h, by) as number, 'xg_limiter_advance_ms');
    this.#wake();
  }

  /** Sets a manual clock to `ms` after its start; it cannot move backwards. */
  setNow(ms: number): void {
    const to = uint(ms, 'ms');
    this.#local((h) => fn.xg_limiter_set_now_ms!(h, to) as number, 'xg_limiter_set_now_ms');
    this.#wake();
  }

  // Calls.

  /** Asks for a call now. Granted: counted, and `permit` must be released. Refused: nothing changes. */
  async acquire(tenant: string): Promise<Decision> {
    return this.#watched(decision(await this.#op<RawDecision>('acquire', tenantBytes(tenant))));
  }

  /** What `acquire` would answer now, taking nothing. */
  async peek(tenant: string): Promise<Decision> {
    return this.#watched(decision(await this.#op<RawDecision>('peek', tenantBytes(tenant))));
  }

  /**
   * What this limiter decided, waited for and was told since it was made, and its shared store's figures
   * (xg_limiter_stats): a frozen `Stats`. It runs on the calling thread (the library reads counters, with no lock and
   * no store round trip); call it as often as a scrape does.
   */
  stats(): Stats {
    return this.#readStats(this.#logger);
  }

  #readStats(logger: Logger | undefined): Stats {
    const stats = statsFrom(this.#direct<RawStats>('stats'));
    this.#watch.saw(stats, logger);
    return stats;
  }

  /** Tells the outage watch of a decision while the failure policy decides, or the first one after. */
  #watched(d: Decision, logger: Logger | undefined = this.#logger): Decision {
    if (d.fallback === null && this.#watch.outage === null) return d;
    // An outage began or ended: the breaker's state comes with the stats.
    if (this.#watch.decided(d.fallback, logger)) {
      try {
        this.#readStats(logger);
      } catch {
        // closed meanwhile: nothing left to watch
      }
    }
    return d;
  }

  /** Counts a call made without the limiter (even over a limit: it happened). */
  async record(tenant: string): Promise<void> {
    await this.#op('record', tenantBytes(tenant));
  }

  /** Gives back a permit (a Decision, or its `permit`); UnknownPermitError when it is not held. 0n is a no-op. */
  async release(permit: Decision | bigint | number): Promise<void> {
    const id = typeof permit === 'object' && permit !== null ? id64(permit.permit, 'permit') : id64(permit, 'permit');
    try {
      await this.#op('release', id);
    } finally {
      this.#wake();
    }
  }

  /**
   * Books the tenant's next free slot (first come, first served); takes no concurrency permit. BookingTooFarError when
   * that slot lies beyond the library's booking horizon.
   */
  async reserve(tenant: string): Promise<Reservation> {
    return this.#op<Reservation>('reserve', tenantBytes(tenant));
  }

  /** Frees a reserved slot whose time has not come (UnknownReservationError otherwise). */
  async cancel(reservation: Reservation | bigint | number): Promise<void> {
    const id =
      typeof reservation === 'object' && reservation !== null
        ? id64(reservation.id, 'reservation')
        : id64(reservation, 'reservation');
    try {
      await this.#op('cancel', id);
    } finally {
      this.#wake();
    }
  }

  /** The server's feedback on a call: a Classification, or a raw HTTP response (bytes or text). */
  async observe(tenant: string, response: Observed): Promise<void> {
    const t = tenantBytes(tenant);
    if (response instanceof Classification) {
      await this.#op('observe', t, Classification.struct(response));
    } else if (typeof response === 'string' || response instanceof Uint8Array) {
      const raw = typeof response === 'string' ? Buffer.from(response, 'utf8') : response;
      await this.#op('observeRaw', t, raw);
    } else {
      throw new InvalidArgumentError('observe takes a Classification or a raw response (a string or bytes)');
    }
  }

  /** The tenant's state now (xg_limiter_snapshot_json): windows, in flight, blocks, what acquire would answer. */
  async snapshot(tenant: string): Promise<Record<string, unknown>> {
    return JSON.parse(await this.#op<string>('snapshot', tenantBytes(tenant))) as Record<string, unknown>;
  }

  /** Sets a tenant's own limits, or clears them with null. Its recorded calls are kept. */
  async setTenantLimits(tenant: string, limits: TenantLimits | null): Promise<void> {
    const t = tenantBytes(tenant);
    let c = null;
    if (limits !== null) {
      if (typeof limits !== 'object')
        throw new InvalidArgumentError('limits must be { minuteLimit, dayLimit, concurrency } or null');
      c = {
        minuteLimit: u32(limits.minuteLimit, 'minuteLimit'),
        dayLimit: u32(limits.dayLimit, 'dayLimit'),
        concurrency: u32(limits.concurrency, 'concurrency'),
      };
    }
    try {
      await this.#op('setTenantLimits', t, c);
    } finally {
      this.#wake();
    }
  }

  // Waits.

  /**
   * Waits until granted, or until the library gives up: `timeoutMs` on the limiter's clock has passed, or the wait
   * certainly ends after it (a day limit, say), which it answers at once. Resolves with the decision: granted with its
   * permit, or the last refusal. It wakes when this process frees capacity; `signal` ends it with an AbortError, and
   * `interrupt()` with LimiterInterruptedError.
   */
  async acquireWait(tenant: string, options: WaitOptions = {}): Promise<Decision> {
    const t = tenantBytes(tenant);
    return this.wait(t, timeoutArg(options), options.signal);
  }

  /**
   * Waits for a permit (as `acquireWait`), runs `work`, and releases the permit when it settles. PermitTimeoutError
   * when the library gives up first.
   */
  async withPermit<T>(
    tenant: string,
    work: (decision: Decision) => Promise<T> | T,
    options: WaitOptions = {},
  ): Promise<T> {
    const t = tenantBytes(tenant);
    const timeoutMs = timeoutArg(options);
    const granted = await this.wait(t, timeoutMs, options.signal);
    if (!granted.granted) throw this.timedOut(tenant, timeoutMs, granted);
    try {
      return await work(granted);
    } finally {
      await this.release(granted).catch((error: unknown) => {
        if (!(error instanceof UnknownPermitError)) throw error; // expired: the slot is free already
      });
    }
  }

  /** @internal The error of a wait the library gave up, in its words. */
  timedOut(tenant: string, timeoutMs: number | undefined, refusal: Decision): PermitTimeoutError {
    const words =
      refusal.reason === null
        ? `the limiter asks to wait ${refusal.waitMs} ms more`
        : refusalWords(refusal.reason, refusal.waitMs);
    const within = timeoutMs === undefined ? 'the wait' : durationWords(timeoutMs);
    return new PermitTimeoutError(
      tenant,
      timeoutMs ?? Number.MAX_SAFE_INTEGER,
      refusal.waitMs,
      refusal.reason,
      within,
      words,
    );
  }

  /**
   * @internal The wait policy, step by step: the library's steps never block (max_block_ms 0); between them this
   * sleeps what the library says, waking sooner when this process frees capacity, and ends at once on `signal`.
   */
  async wait(
    t: Buffer,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
    onRefusal?: OnRefusal,
    callLogger?: Logger,
  ): Promise<Decision> {
    if (signal?.aborted) throw abortError(signal);
    const logger = callLogger ?? this.#logger;
    const deadline = this.#deadline(timeoutMs);
    const waiter: Waiter = { woken: false, wake: null };
    this.#waiters.add(waiter);
    let first: Decision | null = null; // the refusal that started the wait
    // The step struct's in-and-out fields, carried through every step of this wait so the library counts it once.
    let state: WaitState = { waiting: 0, waitStartedMs: 0n };
    try {
      for (;;) {
        waiter.woken = false; // before asking: a release after this point cuts the sleep below short
        const step = await this.#op<RawStep>('step', t, deadline, state);
        state = { waiting: step.waiting, waitStartedMs: step.waitStartedMs };
        if (signal?.aborted) {
          if (step.outcome === XG_WAIT_OUTCOME_GRANTED) await this.#op('release', step.permit).catch(() => undefined);
          throw abortError(signal);
        }
        if (step.outcome !== XG_WAIT_OUTCOME_ASK_AGAIN) return this.#waited(t, first, step, logger);
        if (first === null) {
          first = this.#watched(stepDecision(step), logger);
          if (logs(logger, 'debug')) {
            writeLog(logger, 'debug', waitStartedLine(tenantForLog(t), first.reason, first.waitMs));
          }
          onRefusal?.(first);
        }
        await this.#sleep(step.sleepMs, waiter, signal);
      }
    } catch (error) {
      if (first !== null) this.#waitBroken(t, first, state, error, logger);
      throw error;
    } finally {
      this.#waiters.delete(waiter);
    }
  }

  /** The wait's last step: its decision, logged (a grant at once is no wait). */
  #waited(t: Buffer, first: Decision | null, step: RawStep, logger: Logger | undefined): Decision {
    const d = stepDecision(step);
    if (logs(logger, 'debug')) {
      const tenant = tenantForLog(t);
      if (first !== null) {
        const how = d.granted ? 'granted' : 'gave up';
        writeLog(logger, 'debug', waitEndedLine(tenant, how, first.reason, step.waitedMs));
      } else if (!d.granted) {
        writeLog(logger, 'debug', waitEndedLine(tenant, 'gave up at once', d.reason, 0));
      }
    }
    return this.#watched(d, logger);
  }

  /** A wait ended by an error: `interrupt()`, an AbortSignal, the limiter closed, the store. */
  #waitBroken(t: Buffer, first: Decision, state: WaitState, error: unknown, logger: Logger | undefined): void {
    if (!logs(logger, 'debug')) return;
    const name = error instanceof Error ? error.name : typeof error;
    const how = error instanceof LimiterInterruptedError ? 'interrupted' : `abandoned (${name})`;
    let waitedMs = 0;
    try {
      waitedMs = Math.max(0, this.now() - Number(state.waitStartedMs));
    } catch {
      return; // closed: its clock is gone
    }
    writeLog(logger, 'debug', waitEndedLine(tenantForLog(t), how, first.reason, waitedMs));
  }

  #deadline(timeoutMs: number | undefined): bigint {
    if (timeoutMs === undefined) return XG_NO_DEADLINE;
    const out = [0];
    this.#local((h) => fn.xg_limiter_deadline_ms!(h, timeoutMs, out) as number, 'xg_limiter_deadline_ms');
    return BigInt(out[0]!);
  }

  #sleep(ms: number, waiter: Waiter, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (waiter.woken || this.#closed) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        waiter.wake = null;
      };
      const aborted = (): void => {
        done();
        reject(abortError(signal!));
      };
      const timer = setTimeout(
        () => {
          done();
          resolve();
        },
        Math.min(ms, MAX_TIMER_MS),
      );
      waiter.wake = () => {
        done();
        resolve();
      };
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  /** Wakes every wait of this limiter: capacity was freed here, the clock moved, or the limiter stops. */
  #wake(): void {
    for (const waiter of this.#waiters) {
      waiter.woken = true;
      waiter.wake?.();
    }
  }

  /**
   * Ends every wait on this limiter, now and later: they reject with LimiterInterruptedError. Every other call keeps
   * working. Shutting down while calls may be waiting: `interrupt()`, let them end, then `close()`.
   */
  interrupt(): void {
    this.#local((h) => fn.xg_limiter_interrupt!(h) as number, 'xg_limiter_interrupt');
    this.#wake();
  }

  toString(): string {
    const shared =
      this.#settings === null
        ? ''
        : `, redis=${this.#settings.url.replace(/:\/\/[^/@]*@/, '://***@')} prefix '${this.#settings.keyPrefix}'`;
    return `Limiter(clock=${this.clock}${shared}${this.#closed ? ', closed' : ''})`;
  }
}

function timeoutArg(options: WaitOptions): number | undefined {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
  return options.timeoutMs === undefined ? undefined : uint(options.timeoutMs, 'timeoutMs');
}

// Symbol.dispose / Symbol.asyncDispose only where the runtime defines them (Node 18.18+ and 20.4+).
export interface Limiter {
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}
const symbols = Symbol as unknown as { dispose?: symbol; asyncDispose?: symbol };
if (typeof symbols.dispose === 'symbol') {
  Object.defineProperty(Limiter.prototype, symbols.dispose, {
    value: function dispose(this: Limiter): void {
      this.close();
    },
    configurable: true,
    writable: true,
  });
}
if (typeof symbols.asyncDispose === 'symbol') {
  Object.defineProperty(Limiter.prototype, symbols.asyncDispose, {
    value: async function asyncDispose(this: Limiter): Promise<void> {
      this.close();
    },
    configurable: true,
    writable: true,
  });
}
