// classify / classifyRaw / backoff / resend / needsIdempotencyKey / bodyBytesToClassify / the words: thin
// translations of the library's pure functions. They share no state and never touch the network, so they are
// synchronous.
//
// A classification is built from the scalar struct the library fills (xg_classify_flat). Its text fields (messages,
// lists, OAuth and problem fields, ids) come from the library's JSON form, fetched on their first read: most callers
// (the guards) only look at category, action and the wait.

import { InvalidArgumentError } from './errors';
import { id64, SAFE_MAX, u32, U16_MAX, uint, utf8 } from './args';
import {
  buffered,
  check,
  fn,
  offsets,
  sizeOf,
  takeString,
  XG_TRANSPORT_FAILURE_NO_RESPONSE,
  XG_TRANSPORT_FAILURE_NOT_SENT,
} from './native';
import {
  Action,
  ACTION,
  AUTH_PROBLEM,
  AuthProblem,
  Category,
  CATEGORY,
  GIVE_UP,
  GiveUp,
  RATE_LIMIT_PROBLEM,
  RateLimitProblem,
  REASON,
  Reason,
  TRANSPORT_FAILURES,
  TransportFailure,
} from './vocabulary';

/**
 * Response headers: a fetch `Headers`, axios' `AxiosHeaders`, Node's `IncomingHttpHeaders`, a plain object, a Map, or
 * [name, value] pairs.
 */
export type HeadersInput =
  | Iterable<readonly [string, unknown]>
  | { readonly [name: string]: string | readonly string[] | number | undefined | null }
  | null
  | undefined;

/** A body: bytes (Buffer, Uint8Array, ArrayBuffer) or text (encoded as UTF-8). */
export type BodyInput = string | Uint8Array | ArrayBuffer | null | undefined;

export interface ClassifyOptions {
  /**
   * The time (Unix milliseconds, or a Date) a Retry-After HTTP-date is measured against when the response has no
   * Date header; the system clock by default.
   */
  now?: number | Date;
}

/** Every field of a classification (xero-reference §5, in camelCase), as `Classification.toJSON()` gives it. */
export interface ClassificationFields {
  status: number;
  category: Category;
  action: Action;
  retryable: boolean;
  /**
   * Whether the server may have carried the request out (xero-reference §8): false for a 429 or an offline
   * organisation, true for a 500 or a timeout; `resend` reads it for writes without an Idempotency-Key.
   */
  mayHaveBeenProcessed: boolean;
  rateLimitProblem: RateLimitProblem | null;
  retryAfterMs: number | null;
  recommendedWaitMs: number | null;
  minuteRemaining: number | null;
  dayRemaining: number | null;
  appMinuteRemaining: number | null;
  errorNumber: number | null;
  errorType: string | null;
  message: string | null;
  validationMessages: string[];
  warnings: string[];
  failedElements: number[];
  oauthProblem: string | null;
  oauthProblemAdvice: string | null;
  authProblem: AuthProblem | null;
  problemTitle: string | null;
  problemDetail: string | null;
  correlationId: string | null;
}

type TextFields = Pick<
  ClassificationFields,
  | 'errorType'
  | 'message'
  | 'validationMessages'
  | 'warnings'
  | 'failedElements'
  | 'oauthProblem'
  | 'oauthProblemAdvice'
  | 'problemTitle'
  | 'problemDetail'
  | 'correlationId'
>;

const C = offsets('xg_classification');
const CLASSIFICATION_SIZE = sizeOf('xg_classification');
const INTERNAL = Symbol('xeroguard.internal');

/** An int64 field as a number (the fields hold -1 for unknown, else far less than 2^53): no BigInt made. */
function int64(struct: Buffer, offset: number): number {
  return struct.readInt32LE(offset + 4) * 4294967296 + struct.readUInt32LE(offset);
}

function optional(struct: Buffer, offset: number): number | null {
  const value = int64(struct, offset);
  return value < 0 ? null : value;
}

function textFields(json: string): TextFields {
  const d = JSON.parse(json) as Record<string, unknown>;
  return {
    errorType: d.error_type as string | null,
    message: d.message as string | null,
    validationMessages: d.validation_messages as string[],
    warnings: d.warnings as string[],
    failedElements: d.failed_elements as number[],
    oauthProblem: d.oauth_problem as string | null,
    oauthProblemAdvice: d.oauth_problem_advice as string | null,
    problemTitle: d.problem_title as string | null,
    problemDetail: d.problem_detail as string | null,
    correlationId: d.correlation_id as string | null,
  };
}

/**
 * The classification of one response: every field of xero-reference §5 in camelCase, and `mayHaveBeenProcessed`.
 * The text fields are read from the library's JSON form on first use; `toJSON()` gives every field as a plain object.
 */
export class Classification implements ClassificationFields {
  readonly status: number;
  readonly category: Category;
  readonly action: Action;
  readonly retryable: boolean;
  readonly mayHaveBeenProcessed: boolean;
  readonly rateLimitProblem: RateLimitProblem | null;
  readonly retryAfterMs: number | null;
  readonly recommendedWaitMs: number | null;
  readonly minuteRemaining: number | null;
  readonly dayRemaining: number | null;
  readonly appMinuteRemaining: number | null;
  readonly errorNumber: number | null;
  readonly authProblem: AuthProblem | null;
  /** The struct the library filled: backoff, resend and observe pass it back as it is. */
  readonly #struct: Buffer;
  #text: TextFields | (() => string);

  /** @internal Made by `classify` and `classifyRaw` only. */
  constructor(token: symbol, struct: Buffer, text: () => string) {
    if (token !== INTERNAL) throw new TypeError('Classification objects come from classify() and classifyRaw()');
    this.#struct = struct;
    this.#text = text;
    this.status = struct.readUInt16LE(C.status!);
    this.category = CATEGORY.word(struct.readUInt32LE(C.category!))!;
    this.action = ACTION.word(struct.readUInt32LE(C.action!))!;
    this.retryable = struct[C.retryable!] === 1;
    this.mayHaveBeenProcessed = struct[C.may_have_been_processed!] === 1;
    this.rateLimitProblem = RATE_LIMIT_PROBLEM.word(struct.readUInt32LE(C.rate_limit_problem!));
    this.authProblem = AUTH_PROBLEM.word(struct.readUInt32LE(C.auth_problem!));
    this.retryAfterMs = optional(struct, C.retry_after_ms!);
    this.recommendedWaitMs = optional(struct, C.recommended_wait_ms!);
    this.minuteRemaining = optional(struct, C.minute_remaining!);
    this.dayRemaining = optional(struct, C.day_remaining!);
    this.appMinuteRemaining = optional(struct, C.app_minute_remaining!);
    this.errorNumber = struct[C.has_error_number!] === 1 ? int64(struct, C.error_number!) : null;
  }

  #texts(): TextFields {
    if (typeof this.#text === 'function') this.#text = textFields(this.#text());
    return this.#text;
  }

  get errorType(): string | null {
    return this.#texts().errorType;
  }
  get message(): string | null {
    return this.#texts().message;
  }
  get validationMessages(): string[] {
    return [...this.#texts().validationMessages];
  }
  get warnings(): string[] {
    return [...this.#texts().warnings];
  }
  get failedElements(): number[] {
    return [...this.#texts().failedElements];
  }
  get oauthProblem(): string | null {
    return this.#texts().oauthProblem;
  }
  get oauthProblemAdvice(): string | null {
    return this.#texts().oauthProblemAdvice;
  }
  get problemTitle(): string | null {
    return this.#texts().problemTitle;
  }
  get problemDetail(): string | null {
    return this.#texts().problemDetail;
  }
  get correlationId(): string | null {
    return this.#texts().correlationId;
  }

  /** Every field, as a plain object (what JSON.stringify writes). */
  toJSON(): ClassificationFields {
    const text = this.#texts();
    return {
      status: this.status,
      category: this.category,
      action: this.action,
      retryable: this.retryable,
      mayHaveBeenProcessed: this.mayHaveBeenProcessed,
      rateLimitProblem: this.rateLimitProblem,
      retryAfterMs: this.retryAfterMs,
      recommendedWaitMs: this.recommendedWaitMs,
      minuteRemaining: this.minuteRemaining,
      dayRemaining: this.dayRemaining,
      appMinuteRemaining: this.appMinuteRemaining,
      errorNumber: this.errorNumber,
      errorType: text.errorType,
      message: text.message,
      validationMessages: [...text.validationMessages],
      warnings: [...text.warnings],
      failedElements: [...text.failedElements],
      oauthProblem: text.oauthProblem,
      oauthProblemAdvice: text.oauthProblemAdvice,
      authProblem: this.authProblem,
      problemTitle: text.problemTitle,
      problemDetail: text.problemDetail,
      correlationId: text.correlationId,
    };
  }

  /** @internal The C struct, for xg_backoff, xg_resend and xg_limiter_observe. */
  static struct(c: Classification): Buffer {
    return c.#struct;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs

function headerPairs(headers: HeadersInput): Array<readonly [unknown, unknown]> {
  if (headers === null || headers === undefined) return [];
  if (typeof headers !== 'object') {
    throw new InvalidArgumentError(
      `headers must be a Headers object, a plain object, a Map or [name, value] pairs, not ${typeof headers}`,
    );
  }
  const entries: Iterable<readonly [unknown, unknown]> =
    Symbol.iterator in headers ? (headers as Iterable<readonly [unknown, unknown]>) : Object.entries(headers);
  const pairs: Array<readonly [unknown, unknown]> = [];
  for (const entry of entries) {
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw new InvalidArgumentError('headers must be [name, value] pairs');
    }
    const [name, value] = entry as [unknown, unknown];
    if (value === undefined || value === null) continue; // an axios header left unset
    if (Array.isArray(value)) {
      for (const one of value) pairs.push([name, one]); // repeated headers stay apart
    } else {
      pairs.push([name, value]);
    }
  }
  return pairs;
}

function headerText(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  throw new InvalidArgumentError(`${what} must be a string, not ${value === null ? 'null' : typeof value}`);
}

/** xg_classify_flat's headers: every name and value in order, UTF-8, separated by NUL bytes. */
export function headerBlock(headers: HeadersInput): Buffer | null {
  const pairs = headerPairs(headers);
  if (pairs.length === 0) return null;
  const texts: string[] = [];
  for (const [name, value] of pairs) {
    texts.push(headerText(name, 'a header name'), headerText(value, `the value of header ${String(name)}`));
  }
  const joined = texts.join('\0');
  // A NUL inside a name or value would read as one more separator (HTTP forbids it: RFC 9110 section 5.5).
  let separators = 0;
  for (let at = joined.indexOf('\0'); at >= 0; at = joined.indexOf('\0', at + 1)) separators++;
  if (separators !== texts.length - 1) {
    throw new InvalidArgumentError('header names and values cannot contain NUL (RFC 9110 section 5.5)');
  }
  return utf8(joined, 'headers');
}

/** A body as bytes (no copy for a Buffer, Uint8Array or ArrayBuffer). */
export function bodyBytes(body: BodyInput, what = 'body'): Buffer | null {
  if (body === null || body === undefined) return null;
  if (typeof body === 'string') return body.length === 0 ? null : Buffer.from(body, 'utf8');
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  throw new InvalidArgumentError(
    `${what} must be a string, a Buffer, a Uint8Array or an ArrayBuffer, not ${typeof body}`,
  );
}

function nowMs(options: ClassifyOptions | undefined): number {
  const now = options?.now;
  if (now === undefined) return 0; // the library reads the system clock
  const ms = now instanceof Date ? now.getTime() : now;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms <= 0 || ms > SAFE_MAX) {
    throw new InvalidArgumentError(
      `options.now must be a Date or whole Unix milliseconds after the epoch, got ${String(now)} ` +
        '(0 would mean "read the clock")',
    );
  }
  return ms;
}

// Inputs up to this size are kept to classify again when the text fields are first read; the JSON form of a larger
// one is taken at once, so a kept classification never pins a large body.
const KEEP_INPUT_BYTES = 16 * 1024;

function newStruct(): Buffer {
  // From Node's pool (a slice of a shared buffer), zeroed: cheaper than a zeroed allocation of its own.
  const struct = Buffer.allocUnsafe(CLASSIFICATION_SIZE).fill(0);
  struct.writeUInt32LE(CLASSIFICATION_SIZE, C.struct_size!);
  return struct;
}

function classifyFlat(
  status: number,
  block: Buffer | null,
  body: Buffer | null,
  now: number,
  struct: Buffer | null,
  json: unknown[] | null,
): void {
  check(
    fn.xg_classify_flat!(status, block, block?.length ?? 0, body, body?.length ?? 0, now, struct, json) as number,
    'xg_classify_flat',
  );
}

/**
 * Classifies one response (xero-reference §6). `headers` in any usual form (repeated headers kept apart), `body` as
 * bytes or text; a header name or value holding NUL is refused before it crosses.
 */
export function classify(
  status: number,
  headers?: HeadersInput,
  body?: BodyInput,
  options?: ClassifyOptions,
): Classification {
  const code = uint(status, 'status', U16_MAX);
  const block = headerBlock(headers);
  const data = bodyBytes(body);
  const now = nowMs(options);
  const struct = newStruct();
  if ((data?.length ?? 0) <= KEEP_INPUT_BYTES) {
    classifyFlat(code, block, data, now, struct, null);
    return new Classification(INTERNAL, struct, () => {
      const out: unknown[] = [null];
      classifyFlat(code, block, data, now, null, out);
      return takeString(out[0]);
    });
  }
  const out: unknown[] = [null];
  classifyFlat(code, block, data, now, struct, out);
  const json = takeString(out[0]);
  return new Classification(INTERNAL, struct, () => json);
}

/** Classifies a raw HTTP response (status line, headers, blank line, body), as `curl -i` saves it. */
export function classifyRaw(raw: BodyInput, options?: ClassifyOptions): Classification {
  const data = bodyBytes(raw, 'raw');
  const now = nowMs(options);
  const struct = newStruct();
  const run = (target: Buffer | null, json: unknown[] | null): void =>
    check(fn.xg_classify_raw!(data, data?.length ?? 0, now, target, json) as number, 'xg_classify_raw');
  if ((data?.length ?? 0) <= KEEP_INPUT_BYTES) {
    run(struct, null);
    return new Classification(INTERNAL, struct, () => {
      const out: unknown[] = [null];
      run(null, out);
      return takeString(out[0]);
    });
  }
  const out: unknown[] = [null];
  run(struct, out);
  const json = takeString(out[0]);
  return new Classification(INTERNAL, struct, () => json);
}

// ---------------------------------------------------------------------------------------------------------------
// Retry decisions

/** Mirrors xg_retry_policy; `retryPolicy()` fills what is not given with the library's defaults. */
export interface RetryPolicy {
  /** Retries allowed after the first attempt. */
  maxRetries: number;
  /** The first backoff; it doubles with each retry, up to maxBackoffMs. */
  baseMs: number;
  maxBackoffMs: number;
  /** Up to this much random time is added to each wait. */
  jitterMs: number;
  /** A needed wait longer than this is not slept through: give up instead. */
  maxWaitMs: number;
}

const P = offsets('xg_retry_policy');
const POLICY_SIZE = sizeOf('xg_retry_policy');
const rawDefaultPolicy = fn.xg_retry_policy_default!() as Record<string, number | bigint>;

/**
 * The library's default retry policy (xg_retry_policy_default): 5 retries, 500 ms doubling to 30 s, 250 ms jitter,
 * 5 min cap.
 */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxRetries: Number(rawDefaultPolicy.max_retries),
  baseMs: Number(rawDefaultPolicy.base_ms),
  maxBackoffMs: Number(rawDefaultPolicy.max_backoff_ms),
  jitterMs: Number(rawDefaultPolicy.jitter_ms),
  maxWaitMs: Number(rawDefaultPolicy.max_wait_ms),
});

/** A complete, checked retry policy: the fields given, the library's defaults for the rest. */
export function retryPolicy(policy?: Partial<RetryPolicy>): Readonly<RetryPolicy> {
  if (policy === undefined) return DEFAULT_RETRY_POLICY;
  if (policy === null || typeof policy !== 'object') throw new InvalidArgumentError('a retry policy must be an object');
  const known = new Set(Object.keys(DEFAULT_RETRY_POLICY));
  for (const key of Object.keys(policy)) {
    if (!known.has(key))
      throw new InvalidArgumentError(`unknown retry policy field '${key}' (known: ${[...known].join(', ')})`);
  }
  const merged = { ...DEFAULT_RETRY_POLICY, ...policy };
  return Object.freeze({
    maxRetries: u32(merged.maxRetries, 'maxRetries'),
    baseMs: uint(merged.baseMs, 'baseMs'),
    maxBackoffMs: uint(merged.maxBackoffMs, 'maxBackoffMs'),
    jitterMs: uint(merged.jitterMs, 'jitterMs'),
    maxWaitMs: uint(merged.maxWaitMs, 'maxWaitMs'),
  });
}

function policyStruct(policy: Partial<RetryPolicy> | undefined): Buffer | null {
  if (policy === undefined) return null;
  const p = retryPolicy(policy);
  const struct = Buffer.alloc(POLICY_SIZE);
  const view = new DataView(struct.buffer, struct.byteOffset, struct.byteLength);
  view.setUint32(P.struct_size!, POLICY_SIZE, true);
  view.setUint32(P.max_retries!, p.maxRetries, true);
  view.setBigUint64(P.base_ms!, BigInt(p.baseMs), true);
  view.setBigUint64(P.max_backoff_ms!, BigInt(p.maxBackoffMs), true);
  view.setBigUint64(P.jitter_ms!, BigInt(p.jitterMs), true);
  view.setBigUint64(P.max_wait_ms!, BigInt(p.maxWaitMs), true);
  return struct;
}

/** Retry after `waitMs`, or give up (`giveUp` says why; the wait is then the one that was too long). */
export interface BackoffDecision {
  retry: boolean;
  waitMs: number;
  giveUp: GiveUp | null;
}

const B = offsets('xg_backoff_decision');
const BACKOFF_SIZE = sizeOf('xg_backoff_decision');

function newBackoffStruct(): Buffer {
  const struct = Buffer.alloc(BACKOFF_SIZE);
  struct.writeUInt32LE(BACKOFF_SIZE, B.struct_size!);
  return struct;
}

function backoffDecision(struct: Buffer): BackoffDecision {
  const view = new DataView(struct.buffer, struct.byteOffset, struct.byteLength);
  return {
    retry: view.getUint8(B.retry!) === 1,
    waitMs: Number(view.getBigUint64(B.wait_ms!, true)),
    giveUp: GIVE_UP.word(view.getUint32(B.give_up!, true)),
  };
}

function classificationArg(c: unknown, what: string): Buffer {
  if (!(c instanceof Classification))
    throw new InvalidArgumentError(`${what} must be a Classification from classify()`);
  return Classification.struct(c);
}

/** Whether retry number `attempt` (1 = the first retry) of a classified response should happen, and after how long. */
export function backoff(
  classification: Classification,
  attempt: number,
  policy?: Partial<RetryPolicy>,
): BackoffDecision {
  const struct = classificationArg(classification, 'classification');
  const n = u32(attempt, 'attempt');
  const p = policyStruct(policy);
  const out = newBackoffStruct();
  check(fn.xg_backoff!(struct, n, p, out) as number, 'xg_backoff');
  return backoffDecision(out);
}

/** The request header that makes a write safe to resend: Xero carries out one request per key. */
export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';

function methodArg(method: unknown): Buffer {
  const bytes = utf8(method, 'method');
  if (bytes.length === 0) throw new InvalidArgumentError('method must not be empty');
  return bytes;
}

const TRANSPORT_FAILURE_CODE: Record<TransportFailure, number> = {
  not_sent: XG_TRANSPORT_FAILURE_NOT_SENT,
  no_response: XG_TRANSPORT_FAILURE_NO_RESPONSE,
};

export interface ResendOptions {
  /** Whether the request carries an Idempotency-Key header (required: the safe answer depends on it). */
  hasIdempotencyKey: boolean;
  policy?: Partial<RetryPolicy>;
}

/**
 * Whether a request may be sent again after attempt number `attempt` (1 = the first send) ended with `outcome` (the
 * Classification of its response, or a TransportFailure word when no response came), and after how long (xg_resend,
 * xero-reference §8). What the server did not act on is resent; what it may have carried out is resent for GET, HEAD,
 * OPTIONS and DELETE, or a write carrying an Idempotency-Key (send the same key again), and never for a write without
 * one (`giveUp` is 'unsafe_to_resend'). Then the backoff of `backoff` applies.
 */
export function resend(
  method: string,
  outcome: Classification | TransportFailure,
  attempt: number,
  options: ResendOptions,
): BackoffDecision {
  const methodBytes = methodArg(method);
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError('resend needs options: { hasIdempotencyKey: boolean }');
  }
  if (typeof options.hasIdempotencyKey !== 'boolean') {
    throw new InvalidArgumentError('options.hasIdempotencyKey must be a boolean');
  }
  const n = u32(attempt, 'attempt');
  const p = policyStruct(options.policy);
  const request = {
    struct_size: sizeOf('xg_request'),
    method: methodBytes.toString('utf8'),
    method_len: methodBytes.length,
    has_idempotency_key: options.hasIdempotencyKey ? 1 : 0,
  };
  const out = newBackoffStruct();
  if (typeof outcome === 'string') {
    if (!(TRANSPORT_FAILURES as readonly string[]).includes(outcome)) {
      throw new InvalidArgumentError(
        `outcome must be a Classification or one of ${TRANSPORT_FAILURES.join(', ')}, got '${outcome}'`,
      );
    }
    check(fn.xg_resend!(request, null, TRANSPORT_FAILURE_CODE[outcome], n, p, out) as number, 'xg_resend');
  } else {
    const struct = classificationArg(outcome, 'outcome');
    check(fn.xg_resend!(request, struct, 0, n, p, out) as number, 'xg_resend');
  }
  return backoffDecision(out);
}

/**
 * True for a method the library treats as a write (POST, PUT, PATCH, any method it does not know): one that `resend`
 * would not send again after an ambiguous failure unless it carries an Idempotency-Key (xg_method_is_write).
 */
export function needsIdempotencyKey(method: string): boolean {
  const bytes = methodArg(method);
  const out = [0];
  check(fn.xg_method_is_write!(bytes.toString('utf8'), bytes.length, out) as number, 'xg_method_is_write');
  return out[0] === 1;
}

/**
 * How many body bytes to read to classify a response with this status and Content-Type (xg_body_bytes_to_classify):
 * every error body; a JSON, XML or text 2xx up to 1 MiB (a longer one is classified from its first MiB and must still
 * reach the caller whole); 0 for any other 2xx (a download: classify from status and headers, stream the body on).
 */
export function bodyBytesToClassify(status: number, contentType?: string | null): number {
  const code = uint(status, 'status', U16_MAX);
  // Bytes as received (latin-1 in Node's HTTP parsers); the library reads them leniently.
  const type = contentType === undefined || contentType === null ? null : Buffer.from(String(contentType), 'latin1');
  const out = [0];
  check(fn.xg_body_bytes_to_classify!(code, type, type?.length ?? 0, out) as number, 'xg_body_bytes_to_classify');
  return Number(out[0]);
}

// ---------------------------------------------------------------------------------------------------------------
// Words

/** A refusal in the library's words: "day limit: next call in 11 h 59 min" (xg_refusal_words). */
export function refusalWords(reason: Reason, waitMs: number, inFlight = 0): string {
  if (!REASON.has(reason))
    throw new InvalidArgumentError(`reason must be one of the Reason words, got ${String(reason)}`);
  const code = REASON.code(reason);
  const wait = BigInt(uint(waitMs, 'waitMs'));
  const flight = u32(inFlight, 'inFlight');
  return buffered((buf, size, needed) => fn.xg_refusal_words!(code, wait, flight, buf, size, needed) as number);
}

/** A duration in the library's words: "1 min 30 s" (xg_duration_words). */
export function durationWords(ms: number | bigint): string {
  const value = id64(ms, 'ms');
  return buffered((buf, size, needed) => fn.xg_duration_words!(value, buf, size, needed) as number);
}
