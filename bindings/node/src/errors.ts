// Errors raised by xeroguard: one class per C status code (xg_status), plus the waits that ran out.

/**
 * A call into the native library failed: `status` is the xg_status code, `statusName` its name, the message the
 * library's.
 */
export class XeroGuardError extends Error {
  readonly status: number;
  readonly statusName: string;

  constructor(message: string, status = -1, statusName = '') {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.statusName = statusName;
  }
}

function statusError(code: number, name: string) {
  // One class per status: `instanceof` tells them apart, and `status` is set even when thrown by the binding itself.
  const cls = class extends XeroGuardError {
    static readonly status = code;
    constructor(message: string, status = code, statusName = name) {
      super(message, status, statusName);
    }
  };
  return cls;
}

export class NullPointerError extends statusError(1, 'null_pointer') {}
export class InvalidUtf8Error extends statusError(2, 'invalid_utf8') {}
/** An argument out of range: refused by the binding before it crosses, or by the library. */
export class InvalidArgumentError extends statusError(3, 'invalid_argument') {}
export class MalformedResponseError extends statusError(4, 'malformed_response') {}
export class BufferTooSmallError extends statusError(5, 'buffer_too_small') {}
export class TooLargeError extends statusError(6, 'too_large') {}
/** The permit is not held: already released, expired, or never granted. */
export class UnknownPermitError extends statusError(7, 'unknown_permit') {}
export class UnknownReservationError extends statusError(8, 'unknown_reservation') {}
export class TooManyTenantsError extends statusError(9, 'too_many_tenants') {}
/** advance/setNow on a limiter with the monotonic clock. */
export class WrongClockError extends statusError(10, 'wrong_clock') {}
/** The wait was ended by `Limiter.interrupt()`: the limiter is shutting down. Nothing was acquired. */
export class LimiterInterruptedError extends statusError(11, 'interrupted') {}
/** `reserve` would book a slot beyond the library's booking horizon (about 24.8 days ahead). */
export class BookingTooFarError extends statusError(12, 'booking_too_far') {}
/** The shared store (Redis) could not be reached within the deadline, and no failure policy decided instead. */
export class StoreUnavailableError extends statusError(13, 'store_unavailable') {}
/** The shared store answered with an error (an ACL, a key prefix that runs on another clock); the message says how. */
export class StoreError extends statusError(14, 'store_error') {}
/** The shared store did not accept the credentials (WRONGPASS, NOAUTH): fix the user and password in the store URL. */
export class StoreAuthError extends statusError(16, 'store_auth') {}
/** The shared store's ACL does not allow a command the limiter needs (NOPERM): give the URL's user the README's list. */
export class StoreForbiddenError extends statusError(17, 'store_forbidden') {}
/** A struct set a field the loaded library does not know (the package is newer than its library). */
export class UnknownFieldsError extends statusError(15, 'unknown_fields') {}
/**
 * The limits given differ from those stored for the key prefix (the message names both): pass `replaceLimits` to
 * store the given ones for every process, or `adoptStoredLimits` to pace by the stored ones.
 */
export class LimitsDifferError extends statusError(18, 'limits_differ') {}
/** A read-only look at a key prefix that holds no limits. */
export class NoStoredLimitsError extends statusError(19, 'no_stored_limits') {}
export class PanicError extends statusError(99, 'panic') {}

type StatusErrorClass = (new (message: string, status?: number, statusName?: string) => XeroGuardError) & {
  readonly status: number;
};

const STATUS_ERRORS: ReadonlyMap<number, StatusErrorClass> = new Map(
  [
    NullPointerError,
    InvalidUtf8Error,
    InvalidArgumentError,
    MalformedResponseError,
    BufferTooSmallError,
    TooLargeError,
    UnknownPermitError,
    UnknownReservationError,
    TooManyTenantsError,
    WrongClockError,
    LimiterInterruptedError,
    BookingTooFarError,
    StoreUnavailableError,
    StoreError,
    UnknownFieldsError,
    StoreAuthError,
    StoreForbiddenError,
    LimitsDifferError,
    NoStoredLimitsError,
    PanicError,
  ].map((cls): [number, StatusErrorClass] => [cls.status, cls]),
);

/** The error for a status the library returned, with its message. */
export function errorFor(status: number, statusName: string, message: string): XeroGuardError {
  const cls = STATUS_ERRORS.get(status);
  return cls ? new cls(message, status, statusName) : new XeroGuardError(message, status, statusName);
}

/** Every status code the binding has a class for (the tests tie them to the header). */
export const STATUS_CODES: readonly number[] = [...STATUS_ERRORS.keys()];

/**
 * No permit within the timeout. `waitMs` and `reason` are the limiter's last refusal; the message says it in the
 * library's words: "no permit for tenant 't' within 30 s: day limit: next call in 11 h 59 min".
 */
export class PermitTimeoutError extends XeroGuardError {
  readonly tenant: string;
  readonly timeoutMs: number;
  readonly waitMs: number;
  readonly reason: string | null;

  constructor(
    tenant: string,
    timeoutMs: number,
    waitMs: number,
    reason: string | null,
    timeoutWords: string,
    refusalWords: string,
  ) {
    super(`no permit for tenant '${tenant}' within ${timeoutWords}: ${refusalWords}`);
    this.tenant = tenant;
    this.timeoutMs = timeoutMs;
    this.waitMs = waitMs;
    this.reason = reason;
  }
}

/** What a wait for a permit ends with when its AbortSignal fires (as Node's own APIs: name 'AbortError'). */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';

  constructor(message = 'the operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}
