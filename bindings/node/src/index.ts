// xeroguard for Node.js: classify Xero API responses and pace calls within Xero's rate limits. A binding of the
// native libxeroguard (through koffi); every decision is the library's.

export { TENANTLESS } from './args';
export {
  backoff,
  bodyBytesToClassify,
  Classification,
  classify,
  classifyRaw,
  DEFAULT_RETRY_POLICY,
  durationWords,
  IDEMPOTENCY_KEY_HEADER,
  needsIdempotencyKey,
  refusalWords,
  resend,
  retryPolicy,
} from './classify';
export type {
  BackoffDecision,
  BodyInput,
  ClassificationFields,
  ClassifyOptions,
  HeadersInput,
  ResendOptions,
  RetryPolicy,
} from './classify';
export {
  AbortError,
  BookingTooFarError,
  BufferTooSmallError,
  InvalidArgumentError,
  InvalidUtf8Error,
  LimiterInterruptedError,
  LimitsDifferError,
  MalformedResponseError,
  NoStoredLimitsError,
  NullPointerError,
  PanicError,
  PermitTimeoutError,
  StoreAuthError,
  StoreError,
  StoreForbiddenError,
  StoreUnavailableError,
  TooLargeError,
  TooManyTenantsError,
  UnknownFieldsError,
  UnknownPermitError,
  UnknownReservationError,
  WrongClockError,
  XeroGuardError,
} from './errors';
export { defaultLimits, exactLimits, Limiter } from './limiter';
export type { Logger, Stats } from './stats';
export { registerMetrics } from './prometheus';
export type { MetricsOptions, MetricsRegistry, RegisteredMetrics } from './prometheus';
export type {
  Clock,
  Decision,
  InspectOptions,
  LimiterOptions,
  Limits,
  LimitsInput,
  Observed,
  Reservation,
  TenantLimits,
  WaitOptions,
  WindowLimit,
  WindowLimitInput,
} from './limiter';
export { LibraryLoadError } from './native';
export type {
  Action,
  AuthProblem,
  Category,
  FailurePolicy,
  GiveUp,
  RateLimitProblem,
  Reason,
  StoreFailureKind,
  TransportFailure,
} from './vocabulary';
export {
  ACTIONS,
  AUTH_PROBLEMS,
  CATEGORIES,
  FAILURE_POLICIES,
  GIVE_UPS,
  RATE_LIMIT_PROBLEMS,
  REASONS,
  STORE_FAILURE_KINDS,
  TRANSPORT_FAILURES,
} from './vocabulary';
export { XERO_API } from './guard';
export type { GuardOptions, ResendEvent, StoreErrorEvent, WaitEvent } from './guard';
export { guardFetch } from './fetch';
export type { Fetch } from './fetch';
export { guardAxios, unguardAxios } from './axios';
export type {
  AxiosGuardOptions,
  AxiosLikeAdapter,
  AxiosLikeConfig,
  AxiosLikeInstance,
  AxiosLikeResponse,
} from './axios';

import {
  EXPECTED_ABI_VERSION,
  libraryPath as loadedFrom,
  libraryVersion as loadedVersion,
  PACKAGE_VERSION,
} from './native';

/** This package's version (the crate's). */
export const version: string = PACKAGE_VERSION;
/** The version of the loaded native library, and where it was loaded from. */
export const libraryVersion: string = loadedVersion;
export const libraryPath: string = loadedFrom;
/** The ABI this package needs (the library serves it: checked at load). */
export const ABI_VERSION: number = EXPECTED_ABI_VERSION;
