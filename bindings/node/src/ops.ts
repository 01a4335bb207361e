// The limiter's native operations, synchronous, each reading the library's message on the thread that made the
// call. A limiter of this process runs them on the calling thread (they take microseconds and never touch the
// network); a limiter shared through Redis runs them on the worker threads of pool.ts, so a Redis round trip never
// blocks the event loop. Their results are plain data (an error as its status and message), so they cross
// postMessage unchanged.

import {
  fn,
  lastErrorMessage,
  offsets,
  sizeOf,
  statusName,
  takeString,
  XG_STATS_CATEGORIES,
  XG_STATS_FAILURE_POLICIES,
  XG_STATS_RATE_LIMIT_PROBLEMS,
  XG_STATS_REASONS,
  XG_STATS_STORE_FAILURE_KINDS,
  XG_STATS_WAIT_BUCKETS,
  XG_STATUS_OK,
  XG_STORED_LIMITS_ADOPT,
  XG_STORED_LIMITS_MUST_MATCH,
  XG_STORED_LIMITS_REPLACE,
} from './native';

export type Handle = bigint;

export type OpResult<T> = { ok: true; value: T } | { ok: false; status: number; statusName: string; message: string };

/** xg_decision as read: codes, not words (words are the main thread's business). */
export interface RawDecision {
  granted: boolean;
  permit: bigint;
  waitMs: number;
  reason: number;
  fallback: number;
}

/** xg_wait_step as read. */
export interface RawStep {
  outcome: number;
  permit: bigint;
  waitMs: number;
  reason: number;
  sleepMs: number;
  fallback: number;
  /** The wait's own state, which the library keeps in the step struct from one step to the next (for its stats). */
  waiting: number;
  waitStartedMs: bigint;
  waitedMs: number;
}

/** What a wait carries from one step to the next: the in-and-out fields of xg_wait_step (zero before the first). */
export interface WaitState {
  waiting: number;
  waitStartedMs: bigint;
}

/** xg_stats as read: counts by code (words are the main thread's business), milliseconds. */
export interface RawStats {
  shared: boolean;
  breakerOpen: boolean;
  granted: number;
  refused: number[];
  fallbacks: number[];
  waitsStarted: number;
  waitsGranted: number;
  waitsGivenUp: number;
  waitsInterrupted: number;
  waitMsTotal: number;
  /** Each bucket's upper bound (ms, inclusive); XG_NO_DEADLINE for the last, which has none. */
  waitBucketLeMs: bigint[];
  waitBuckets: number[];
  responses: number[];
  rateLimited: number[];
  storeOperations: number;
  storeFailures: number[];
  breakerOpenings: number;
  replaysPending: number;
}

export interface RawReservation {
  id: bigint;
  atMs: number;
  waitMs: number;
}

/** xg_limits as koffi encodes it (field names of the header). */
export interface CLimits {
  struct_size: number;
  tenant_minute: { limit: number; window_ms: number; margin_ms: number };
  tenant_day: { limit: number; window_ms: number; margin_ms: number };
  tenant_concurrency: number;
  app_minute: { limit: number; window_ms: number; margin_ms: number };
  permit_timeout_ms: number;
  max_tenants: number;
}

/** What xg_redis_options needs, checked by the Limiter before it gets here. */
export interface RedisSettings {
  url: string;
  keyPrefix: string;
  deadlineMs: number;
  breakerCooldownMs: number;
  onStoreError: number;
  workers: number;
  replaceLimits: boolean;
  adoptStoredLimits: boolean;
  tlsCaFile: string | null;
}

export interface CTenantLimits {
  minuteLimit: number;
  dayLimit: number;
  concurrency: number;
}

const D = offsets('xg_decision');
const DECISION_SIZE = sizeOf('xg_decision');
const S = offsets('xg_wait_step');
const STEP_SIZE = sizeOf('xg_wait_step');
const ST = offsets('xg_stats');
const STATS_SIZE = sizeOf('xg_stats');
const R = offsets('xg_reservation');
const RESERVATION_SIZE = sizeOf('xg_reservation');

function outcome<T>(status: number, functionName: string, value: () => T): OpResult<T> {
  if (status === XG_STATUS_OK) return { ok: true, value: value() };
  // Read here, right after the call, on the thread that made it: the message is per thread.
  return { ok: false, status, statusName: statusName(status), message: lastErrorMessage() || functionName };
}

function sized(size: number): Buffer {
  const struct = Buffer.alloc(size);
  struct.writeUInt32LE(size, 0);
  return struct;
}

function asBuffer(bytes: Uint8Array | null): Buffer | null {
  if (bytes === null) return null;
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readDecision(struct: Buffer): RawDecision {
  const view = new DataView(struct.buffer, struct.byteOffset, struct.byteLength);
  return {
    granted: view.getUint8(D.granted!) === 1,
    permit: view.getBigUint64(D.permit!, true),
    waitMs: Number(view.getBigUint64(D.wait_ms!, true)),
    reason: view.getUint32(D.reason!, true),
    fallback: view.getUint32(D.fallback!, true),
  };
}

function readStats(struct: Buffer): RawStats {
  const count = (offset: number): number => Number(struct.readBigUInt64LE(offset));
  const counts = (field: string, length: number): number[] =>
    Array.from({ length }, (_, i) => count(ST[field]! + 8 * i));
  return {
    shared: struct[ST.shared!] === 1,
    breakerOpen: struct[ST.breaker_open!] === 1,
    granted: count(ST.granted!),
    refused: counts('refused', XG_STATS_REASONS),
    fallbacks: counts('fallbacks', XG_STATS_FAILURE_POLICIES),
    waitsStarted: count(ST.waits_started!),
    waitsGranted: count(ST.waits_granted!),
    waitsGivenUp: count(ST.waits_given_up!),
    waitsInterrupted: count(ST.waits_interrupted!),
    waitMsTotal: count(ST.wait_ms_total!),
    waitBucketLeMs: Array.from({ length: XG_STATS_WAIT_BUCKETS }, (_, i) =>
      struct.readBigUInt64LE(ST.wait_bucket_le_ms! + 8 * i),
    ),
    waitBuckets: counts('wait_buckets', XG_STATS_WAIT_BUCKETS),
    responses: counts('responses', XG_STATS_CATEGORIES),
    rateLimited: counts('rate_limited', XG_STATS_RATE_LIMIT_PROBLEMS),
    storeOperations: count(ST.store_operations!),
    storeFailures: counts('store_failures', XG_STATS_STORE_FAILURE_KINDS),
    breakerOpenings: count(ST.breaker_openings!),
    replaysPending: count(ST.replays_pending!),
  };
}

function decide(name: string, handle: Handle, tenant: Uint8Array): OpResult<RawDecision> {
  const t = asBuffer(tenant)!;
  const out = sized(DECISION_SIZE);
  return outcome(fn[name]!(handle, t, t.length, out) as number, name, () => readDecision(out));
}

function tenantCall(name: string, handle: Handle, tenant: Uint8Array, ...rest: unknown[]): OpResult<void> {
  const t = asBuffer(tenant)!;
  return outcome(fn[name]!(handle, t, t.length, ...rest) as number, name, () => undefined);
}

/** The C options struct of a shared limiter's settings. */
function cRedisOptions(settings: RedisSettings): Record<string, unknown> {
  const url = Buffer.from(settings.url, 'utf8');
  const prefix = Buffer.from(settings.keyPrefix, 'utf8');
  const ca = settings.tlsCaFile === null ? null : Buffer.from(settings.tlsCaFile, 'utf8');
  return {
    struct_size: sizeOf('xg_redis_options'),
    url: settings.url,
    url_len: url.length,
    key_prefix: settings.keyPrefix,
    key_prefix_len: prefix.length,
    deadline_ms: settings.deadlineMs,
    breaker_cooldown_ms: settings.breakerCooldownMs,
    on_store_error: settings.onStoreError,
    workers: settings.workers,
    replace_limits: settings.replaceLimits
      ? XG_STORED_LIMITS_REPLACE
      : settings.adoptStoredLimits
        ? XG_STORED_LIMITS_ADOPT
        : XG_STORED_LIMITS_MUST_MATCH,
    tls_ca_file: settings.tlsCaFile,
    tls_ca_file_len: ca === null ? 0 : ca.length,
  };
}

export const OPS = {
  newLimiter(limits: CLimits, clock: number): OpResult<Handle> {
    const out: unknown[] = [null];
    return outcome(fn.xg_limiter_new!(limits, clock, out) as number, 'xg_limiter_new', () => out[0] as Handle);
  },

  newRedis(limits: CLimits, settings: RedisSettings, clock: number): OpResult<Handle> {
    const out: unknown[] = [null];
    return outcome(
      fn.xg_limiter_new_redis!(limits, cRedisOptions(settings), clock, out) as number,
      'xg_limiter_new_redis',
      () => out[0] as Handle,
    );
  },

  /** A read-only limiter over a shared prefix (xg_limiter_inspect_redis). */
  inspectRedis(settings: RedisSettings, clock: number): OpResult<Handle> {
    const out: unknown[] = [null];
    return outcome(
      fn.xg_limiter_inspect_redis!(cRedisOptions(settings), clock, out) as number,
      'xg_limiter_inspect_redis',
      () => out[0] as Handle,
    );
  },

  /** The limits a limiter paces by (a shared one: those stored for its prefix). */
  limits(handle: Handle): OpResult<Record<string, unknown>> {
    const out = { ...(fn.xg_limits_default!() as Record<string, unknown>) };
    return outcome(fn.xg_limiter_limits!(handle, out) as number, 'xg_limiter_limits', () => out);
  },

  acquire(handle: Handle, tenant: Uint8Array): OpResult<RawDecision> {
    return decide('xg_limiter_acquire', handle, tenant);
  },

  peek(handle: Handle, tenant: Uint8Array): OpResult<RawDecision> {
    return decide('xg_limiter_peek', handle, tenant);
  },

  /**
   * One step of a wait that never blocks (max_block_ms 0): the caller sleeps `sleepMs` itself. `state` is what the
   * previous step left in the struct (the steps of one wait may run on different threads, so it travels as data).
   */
  step(handle: Handle, tenant: Uint8Array, deadline: bigint, state: WaitState): OpResult<RawStep> {
    const t = asBuffer(tenant)!;
    const out = sized(STEP_SIZE);
    out[S.waiting!] = state.waiting;
    out.writeBigUInt64LE(state.waitStartedMs, S.wait_started_ms!);
    const status = fn.xg_limiter_acquire_until!(handle, t, t.length, deadline, 0, out) as number;
    return outcome(status, 'xg_limiter_acquire_until', () => {
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      return {
        outcome: view.getUint32(S.outcome!, true),
        permit: view.getBigUint64(S.permit!, true),
        waitMs: Number(view.getBigUint64(S.wait_ms!, true)),
        reason: view.getUint32(S.reason!, true),
        sleepMs: Number(view.getBigUint64(S.sleep_ms!, true)),
        fallback: view.getUint32(S.fallback!, true),
        waiting: view.getUint8(S.waiting!),
        waitStartedMs: view.getBigUint64(S.wait_started_ms!, true),
        waitedMs: Number(view.getBigUint64(S.waited_ms!, true)),
      };
    });
  },

  /** The limiter's statistics: counters read with no lock and no store round trip. */
  stats(handle: Handle): OpResult<RawStats> {
    const out = sized(STATS_SIZE);
    return outcome(fn.xg_limiter_stats!(handle, out) as number, 'xg_limiter_stats', () => readStats(out));
  },

  release(handle: Handle, permit: bigint): OpResult<void> {
    return outcome(fn.xg_limiter_release!(handle, permit) as number, 'xg_limiter_release', () => undefined);
  },

  record(handle: Handle, tenant: Uint8Array): OpResult<void> {
    return tenantCall('xg_limiter_record', handle, tenant);
  },

  reserve(handle: Handle, tenant: Uint8Array): OpResult<RawReservation> {
    const t = asBuffer(tenant)!;
    const out = sized(RESERVATION_SIZE);
    return outcome(fn.xg_limiter_reserve!(handle, t, t.length, out) as number, 'xg_limiter_reserve', () => {
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      return {
        id: view.getBigUint64(R.id!, true),
        atMs: Number(view.getBigUint64(R.at_ms!, true)),
        waitMs: Number(view.getBigUint64(R.wait_ms!, true)),
      };
    });
  },

  cancel(handle: Handle, reservation: bigint): OpResult<void> {
    return outcome(fn.xg_limiter_cancel!(handle, reservation) as number, 'xg_limiter_cancel', () => undefined);
  },

  /** Feedback from a classification: `classification` is the struct classify() filled. */
  observe(handle: Handle, tenant: Uint8Array, classification: Uint8Array): OpResult<void> {
    return tenantCall('xg_limiter_observe', handle, tenant, asBuffer(classification));
  },

  observeRaw(handle: Handle, tenant: Uint8Array, raw: Uint8Array): OpResult<void> {
    const r = asBuffer(raw)!;
    return tenantCall('xg_limiter_observe_raw', handle, tenant, r, r.length);
  },

  snapshot(handle: Handle, tenant: Uint8Array): OpResult<string> {
    const t = asBuffer(tenant)!;
    const out: unknown[] = [null];
    return outcome(fn.xg_limiter_snapshot_json!(handle, t, t.length, out) as number, 'xg_limiter_snapshot_json', () =>
      takeString(out[0]),
    );
  },

  setTenantLimits(handle: Handle, tenant: Uint8Array, limits: CTenantLimits | null): OpResult<void> {
    const c =
      limits === null
        ? null
        : {
            struct_size: sizeOf('xg_tenant_limits'),
            minute_limit: limits.minuteLimit,
            day_limit: limits.dayLimit,
            concurrency: limits.concurrency,
          };
    return tenantCall('xg_limiter_set_tenant_limits', handle, tenant, c);
  },
};

export type OpName = keyof typeof OPS;

/** Runs one operation by name (what a worker does with a message). */
export function runOp(op: OpName, args: unknown[]): OpResult<unknown> {
  const operation = OPS[op] as (...a: unknown[]) => OpResult<unknown>;
  if (typeof operation !== 'function') {
    return { ok: false, status: 3, statusName: 'invalid_argument', message: `unknown operation ${String(op)}` };
  }
  return operation(...args);
}
