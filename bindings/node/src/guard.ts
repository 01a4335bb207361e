// The loop every guard shares (axios.ts, fetch.ts), as the Python guards and the C# handler: wait for a permit,
// send, read the body by the library's rule, classify, observe, release, and resend only what the library says may
// be resent. Every decision is the library's (bodyBytesToClassify, classify, resend, the wait policy); the guards only
// say which of their client's errors are transport failures, and of which kind.
//
// Once a response exists nothing raises: an observe or release that fails (a Redis blip) is reported to
// `onStoreError` (or logged), never thrown; only the wait for a permit may fail a call (issue 20, point 4).

import { randomUUID } from 'node:crypto';

import { hook, TENANTLESS, tenantBytes, uint } from './args';
import {
  Classification,
  classify,
  HeadersInput,
  needsIdempotencyKey,
  resend,
  RetryPolicy,
  retryPolicy,
} from './classify';
import { AbortError, InvalidArgumentError, PermitTimeoutError } from './errors';
import { Decision, Limiter, MAX_TIMER_MS } from './limiter';
import type { Logger } from './stats';
import { FailurePolicy, GiveUp, Reason, TransportFailure } from './vocabulary';

/** Xero's API: what a guard paces unless told other prefixes. */
export const XERO_API = 'https://api.xero.com/';
export const TENANT_HEADER = 'Xero-Tenant-Id';

/** Given to `onWait`: the limiter refused an attempt for now and the guard waits for a permit (once per attempt). */
export interface WaitEvent {
  method: string;
  url: string;
  tenant: string;
  /** 1 for the first send. */
  attempt: number;
  /** What the limiter asked for (a release may end it sooner). */
  waitMs: number;
  reason: Reason | null;
  /** The failure policy that refused while a shared store was out of reach (null: the limiter's state did). */
  fallback: FailurePolicy | null;
}

/**
 * Given to `onRetry` (before a resend: `giveUp` null, `waitMs` the wait before it) and to `onGiveUp` (the guard stops
 * although resending might have cured the outcome: `giveUp` says why; for 'wait_too_long' `waitMs` is the wait that
 * was too long). `classification` is the attempt's response (null when none came), `error` the transport failure a
 * give-up rethrows unchanged, or the PermitTimeoutError of a permit wait given up.
 */
export interface ResendEvent {
  method: string;
  url: string;
  tenant: string;
  attempt: number;
  waitMs: number;
  giveUp: GiveUp | null;
  classification: Classification | null;
  error: unknown;
}

/** Given to `onStoreError`: feeding a response back (observe) or giving its permit back (release) failed. */
export interface StoreErrorEvent {
  operation: 'observe' | 'release';
  method: string;
  url: string;
  tenant: string;
  attempt: number;
  error: unknown;
}

export interface GuardOptions {
  /** A retry policy (fields left out take the library's defaults), or just the number of retries. */
  retries?: Partial<RetryPolicy> | number;
  /** How long to wait for a permit (ms); the policy's maxWaitMs by default, so a day limit is never slept through. */
  permitTimeoutMs?: number;
  /**
   * True (the default): every POST, PUT and PATCH without an Idempotency-Key gets one, a UUID, the same on every
   * resend; a caller's own key is kept. False: no key is added, and a write the server may have carried out is never
   * resent.
   */
  idempotencyKeys?: boolean;
  /** The URL prefixes the guard paces (default: Xero's API, https://api.xero.com/); other requests pass untouched. */
  prefixes?: readonly string[];
  /** The limiter held an attempt back. Hooks run on the request's path: keep them quick. */
  onWait?: (event: WaitEvent) => void;
  /** Before a resend. */
  onRetry?: (event: ResendEvent) => void;
  /** The guard stopped short of a final answer (retries used up, a wait too long, a write unsafe to resend). */
  onGiveUp?: (event: ResendEvent) => void;
  /** observe or release failed after a response arrived; the response still reaches the caller. */
  onStoreError?: (event: StoreErrorEvent) => void;
  /**
   * Debug lines for resends, info for give-ups, warnings for store errors without an onStoreError hook; and for the
   * guard's calls, the limiter's lines (waits, outages of the shared store, its breaker) instead of the limiter's
   * own `logger`.
   */
  logger?: Logger;
}

/** One logical call, the same for each of its attempts. */
export interface Call {
  method: string;
  url: string;
  tenant: string;
  hasIdempotencyKey: boolean;
}

/** What one attempt that got a response gives back. */
export interface Attempt<R> {
  status: number;
  headers: HeadersInput;
  /** The part of the body the library's rule asked for. */
  body: Uint8Array | null;
  /** The outcome as the caller's client gives it: returns the response, or throws the client's error for it. */
  settle: () => R;
  /** Frees what a response that is not handed on holds (its connection). */
  discard: () => void;
}

/** Says which errors of a client are transport failures (no HTTP response), and of which kind; null: not one. */
export type FailureKind = (error: unknown) => TransportFailure | null;

function resolvePolicy(retries: GuardOptions['retries']): Readonly<RetryPolicy> {
  if (retries === undefined) return retryPolicy();
  if (typeof retries === 'number') return retryPolicy({ maxRetries: retries });
  return retryPolicy(retries);
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Sleeps `ms` (in pieces of at most MAX_TIMER_MS, setTimeout's limit), ending at once with an AbortError when `signal`
 * fires.
 */
export async function sleep(ms: number, signal?: AbortSignal | null): Promise<void> {
  let left = ms;
  do {
    const piece = Math.min(left, MAX_TIMER_MS);
    await sleepOnce(piece, signal);
    left -= piece;
  } while (left > 0);
}

/** One setTimeout of at most MAX_TIMER_MS. */
function sleepOnce(ms: number, signal?: AbortSignal | null): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }));
  return new Promise((resolve, reject) => {
    const aborted = (): void => {
      clearTimeout(timer);
      reject(new AbortError(undefined, { cause: signal!.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }, ms);
    signal?.addEventListener('abort', aborted, { once: true });
  });
}

/** The errors a call may have been caused by: the error and its causes. */
export function* errorChain(error: unknown): Generator<Record<string, unknown>> {
  let current: unknown = error;
  for (let depth = 0; depth < 16 && current !== null && typeof current === 'object'; depth++) {
    yield current as Record<string, unknown>;
    current = (current as { cause?: unknown }).cause;
  }
}

// TLS certificate failures happen only in a handshake, before any request byte is sent.
const CERTIFICATE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/**
 * True when a failure certainly happened before the request left: a connect or DNS failure (Node's system errors name
 * the syscall), undici's connect timeout, a TLS certificate failure. Anything else may have reached the server.
 */
export function certainlyNotSent(error: unknown): boolean {
  for (const e of errorChain(error)) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (e.syscall === 'connect' || e.syscall === 'getaddrinfo' || e.syscall === 'getaddrinfo_async') return true;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT')
      return true;
    if (code.startsWith('ERR_TLS_CERT') || CERTIFICATE.test(code)) return true;
  }
  return false;
}

export class Guard {
  readonly policy: Readonly<RetryPolicy>;
  readonly permitTimeoutMs: number;
  readonly idempotencyKeys: boolean;
  readonly prefixes: readonly string[];
  readonly #options: GuardOptions;

  constructor(
    readonly limiter: Limiter,
    options: GuardOptions,
    readonly transportFailure: FailureKind,
  ) {
    if (!(limiter instanceof Limiter)) throw new InvalidArgumentError('limiter must be a xeroguard Limiter');
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
    this.policy = resolvePolicy(options.retries);
    this.permitTimeoutMs =
      options.permitTimeoutMs === undefined ? this.policy.maxWaitMs : uint(options.permitTimeoutMs, 'permitTimeoutMs');
    if (options.idempotencyKeys !== undefined && typeof options.idempotencyKeys !== 'boolean') {
      throw new InvalidArgumentError('idempotencyKeys must be a boolean');
    }
    this.idempotencyKeys = options.idempotencyKeys ?? true;
    const prefixes = options.prefixes ?? [XERO_API];
    if (!Array.isArray(prefixes) || prefixes.some((p) => typeof p !== 'string' || p.length === 0)) {
      throw new InvalidArgumentError('prefixes must be a list of URL prefixes');
    }
    this.prefixes = [...prefixes];
    for (const name of ['onWait', 'onRetry', 'onGiveUp', 'onStoreError'] as const) hook(options[name], name);
    this.#options = options;
  }

  /** Whether a request to `url` is paced (its URL starts with one of the prefixes). */
  applies(url: string): boolean {
    return this.prefixes.some((prefix) => url.startsWith(prefix));
  }

  /**
   * The call a request makes: its tenant (Xero-Tenant-Id; none: a tenantless call), and for a write without an
   * Idempotency-Key a new one (set through `setKey`, kept on every resend), unless keys are off; a caller's key is
   * kept.
   */
  prepare(method: string, url: string, tenant: string | null, hasKey: boolean, setKey: (key: string) => void): Call {
    const upper = method.toUpperCase();
    let keyed = hasKey;
    if (!keyed && this.idempotencyKeys && needsIdempotencyKey(upper)) {
      setKey(randomUUID());
      keyed = true;
    }
    return { method: upper, url, tenant: tenant ?? TENANTLESS, hasIdempotencyKey: keyed };
  }

  async run<R>(call: Call, send: () => Promise<Attempt<R>>, signal?: AbortSignal | null): Promise<R> {
    const t = tenantBytes(call.tenant); // refused before any wait
    for (let attempt = 1; ; attempt++) {
      const permit = await this.limiter.wait(
        t,
        this.permitTimeoutMs,
        signal ?? undefined,
        this.#onRefusal(call, attempt),
        this.#options.logger,
      );
      if (!permit.granted) throw this.#timedOut(call, attempt, permit);
      let response: Attempt<R> | null = null;
      let failure: { error: unknown; kind: TransportFailure } | null = null;
      try {
        response = await send();
      } catch (error) {
        const kind = this.transportFailure(error);
        if (kind === null) {
          await this.#bestEffort('release', call, attempt, () => this.limiter.release(permit));
          throw error; // not a transport failure (a bad URL, a cancellation): the caller's to see, unchanged
        }
        failure = { error, kind };
      }
      let c: Classification | null = null;
      if (response !== null) {
        try {
          c = classify(response.status, response.headers, response.body);
        } catch (error) {
          // Header text the library refuses: the response still reaches the caller, as it came.
          this.#log(
            'warn',
            `xeroguard: ${call.method} ${call.url}: could not classify the response: ${errorText(error)}`,
          );
        }
        const classified = c;
        // Before the permit goes back, so the next waiter sees the server's view.
        if (classified !== null)
          await this.#bestEffort('observe', call, attempt, () => this.limiter.observe(call.tenant, classified));
      }
      await this.#bestEffort('release', call, attempt, () => this.limiter.release(permit));
      if (response !== null && c === null) return response.settle();
      const waitMs = this.#resendWait(call, attempt, c, failure, response);
      if (waitMs === null) {
        if (failure !== null) throw failure.error;
        return response!.settle();
      }
      response?.discard();
      await sleep(waitMs, signal);
    }
  }

  #onRefusal(call: Call, attempt: number): ((refusal: Decision) => void) | undefined {
    const onWait = this.#options.onWait;
    if (onWait === undefined) return undefined;
    return (refusal) =>
      onWait({
        method: call.method,
        url: call.url,
        tenant: call.tenant,
        attempt,
        waitMs: refusal.waitMs,
        reason: refusal.reason,
        fallback: refusal.fallback,
      });
  }

  #timedOut(call: Call, attempt: number, refusal: Decision): PermitTimeoutError {
    const error = this.limiter.timedOut(call.tenant, this.permitTimeoutMs, refusal);
    this.#log('info', `xeroguard: ${call.method} ${call.url}: ${error.message}`);
    this.#options.onGiveUp?.({
      method: call.method,
      url: call.url,
      tenant: call.tenant,
      attempt,
      waitMs: error.waitMs,
      giveUp: 'wait_too_long',
      classification: null,
      error,
    });
    return error;
  }

  /** An observe or release after the response: reported, never thrown (the response must reach the caller). */
  async #bestEffort(
    operation: 'observe' | 'release',
    call: Call,
    attempt: number,
    run: () => Promise<void>,
  ): Promise<void> {
    try {
      await run();
    } catch (error) {
      const onStoreError = this.#options.onStoreError;
      const text = `xeroguard: ${call.method} ${call.url}: ${operation} failed after the response: ${errorText(error)}`;
      if (onStoreError !== undefined) {
        try {
          onStoreError({ operation, method: call.method, url: call.url, tenant: call.tenant, attempt, error });
        } catch (hookError) {
          this.#log('warn', `xeroguard: onStoreError failed: ${errorText(hookError)}`);
        }
      } else if (this.#options.logger?.warn !== undefined) {
        this.#options.logger.warn(text);
      } else {
        process.emitWarning(text, { code: 'XEROGUARD_STORE_ERROR' });
      }
    }
  }

  /** The wait before the next attempt, or null to hand the outcome to the caller. */
  #resendWait(
    call: Call,
    attempt: number,
    c: Classification | null,
    failure: { error: unknown; kind: TransportFailure } | null,
    response: Attempt<unknown> | null,
  ): number | null {
    const outcome = c ?? failure!.kind;
    const d = resend(call.method, outcome, attempt, { hasIdempotencyKey: call.hasIdempotencyKey, policy: this.policy });
    const described = c !== null ? `${c.status} ${c.category}` : `${errorText(failure!.error)} (${failure!.kind})`;
    const event: ResendEvent = {
      method: call.method,
      url: call.url,
      tenant: call.tenant,
      attempt,
      waitMs: d.waitMs,
      giveUp: d.giveUp,
      classification: c,
      error: failure?.error ?? null,
    };
    if (d.retry) {
      this.#log(
        'debug',
        `xeroguard: resending ${call.method} ${call.url} after ${d.waitMs} ms (attempt ${attempt}: ${described})`,
      );
      try {
        this.#options.onRetry?.(event);
      } catch (error) {
        response?.discard(); // a failing hook stops the call with its error; the response it was told of is dropped
        throw error;
      }
      return d.waitMs;
    }
    if (d.giveUp !== 'not_retryable') {
      // Not a final answer: resending might have cured it.
      this.#log(
        'info',
        `xeroguard: not resending ${call.method} ${call.url} after ${described}: ${d.giveUp} (wait ${d.waitMs} ms)`,
      );
      try {
        this.#options.onGiveUp?.(event);
      } catch (error) {
        response?.discard();
        throw error;
      }
    }
    return null;
  }

  #log(level: 'debug' | 'info' | 'warn', message: string): void {
    this.#options.logger?.[level]?.(message);
  }
}
