// The vocabulary (xero-reference §4) as string literal unions. The words are written out here so TypeScript knows
// them; the C codes never are: they are read from the loaded library's xg_*_name functions (test/native.test.mjs ties
// each union to the library's words).

import { XeroGuardError } from './errors';
import { fn, libraryVersion, XG_NONE } from './native';

export const CATEGORIES = [
  'success',
  'partial_success',
  'validation_error',
  'bad_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'conflict',
  'precondition_failed',
  'payload_too_large',
  'rate_limited',
  'internal_error',
  'not_implemented',
  'service_unavailable',
  'organisation_offline',
  'unknown',
] as const;
/** What kind of response this is. */
export type Category = (typeof CATEGORIES)[number];

export const ACTIONS = ['none', 'retry', 'refresh_token', 'reauthorize', 'fix_request'] as const;
/** What the caller should do next. */
export type Action = (typeof ACTIONS)[number];

export const RATE_LIMIT_PROBLEMS = ['minute', 'day', 'app_minute', 'concurrent', 'unknown'] as const;
/** Which rate limit a 429 reports. */
export type RateLimitProblem = (typeof RATE_LIMIT_PROBLEMS)[number];

export const AUTH_PROBLEMS = [
  'token_expired',
  'invalid_token',
  'insufficient_scope',
  'tenant_not_authorized',
  'invalid_grant',
  'invalid_client',
  'unsupported_grant_type',
  'nonce_used',
  'signature_invalid',
  'signature_method_rejected',
  'token_rejected',
  'other',
] as const;
/** Why authentication or authorisation failed. */
export type AuthProblem = (typeof AUTH_PROBLEMS)[number];

export const REASONS = [
  'minute',
  'day',
  'app_minute',
  'concurrency',
  'retry_after',
  'organisation_offline',
  'outage',
  'store_unavailable',
] as const;
/** Why the limiter refused (or would refuse) a call. */
export type Reason = (typeof REASONS)[number];

export const GIVE_UPS = ['not_retryable', 'attempts_exhausted', 'wait_too_long', 'unsafe_to_resend'] as const;
/** Why `backoff` or `resend` gave up. */
export type GiveUp = (typeof GIVE_UPS)[number];

export const FAILURE_POLICIES = ['closed', 'open', 'local'] as const;
/**
 * What a limiter sharing its state through Redis does while the store cannot be reached, and (as
 * `Decision.fallback`) which of it decided a call: closed refuses (reason store_unavailable), open grants (flagged),
 * local decides with this process's share of each limit.
 */
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

export const STORE_FAILURE_KINDS = ['timeout', 'connection', 'refused', 'protocol'] as const;
/**
 * Why an operation on the shared store failed (`Stats.storeFailures`): no answer within the deadline, not reachable
 * or the connection broke, an error reply that waiting will not fix (an ACL, another clock on the prefix), or a reply
 * the protocol does not expect.
 */
export type StoreFailureKind = (typeof STORE_FAILURE_KINDS)[number];

export const TRANSPORT_FAILURES = ['not_sent', 'no_response'] as const;
/**
 * What became of an attempt that got no HTTP response, for `resend`: not_sent (connection refused, DNS, TLS handshake,
 * connect timeout: nothing reached the server) or no_response (sent, and no answer came: a read timeout, a reset).
 */
export type TransportFailure = (typeof TRANSPORT_FAILURES)[number];

// The name functions answer NULL past the last code; the highest code today is 16.
const CODE_SCAN = 256;

/** One vocabulary's C codes as the loaded library names them. */
export class Codes<W extends string> {
  readonly byCode = new Map<number, W | null>();
  readonly codeOf = new Map<W, number>();

  constructor(
    readonly kind: string,
    words: readonly W[],
    nameFunction: string,
  ) {
    // XG_NONE (0) means "none" for the optional vocabularies; category and action name their code 0.
    this.byCode.set(XG_NONE, null);
    const known = new Set<string>(words);
    const name = fn[nameFunction]!;
    for (let code = 0; code < CODE_SCAN; code++) {
      const word = name(code) as string | null;
      if (word !== null && known.has(word)) {
        this.byCode.set(code, word as W);
        this.codeOf.set(word as W, code);
      }
    }
  }

  /** The word of a code the library answered; an error for a code this package does not know. */
  word(code: number): W | null {
    const word = this.byCode.get(code);
    if (word === undefined) {
      throw new XeroGuardError(
        `the library answered ${this.kind} code ${code}, which this xeroguard package does not know; ` +
          'install a matching package',
      );
    }
    return word;
  }

  /** The code of a word, for calls into C (a word the library lacks is an error). */
  code(word: W): number {
    const code = this.codeOf.get(word);
    if (code === undefined) {
      throw new XeroGuardError(`the loaded library (${libraryVersion}) has no code for the ${this.kind} '${word}'`);
    }
    return code;
  }

  /** Whether `value` is one of the words (for arguments). */
  has(value: unknown): value is W {
    return typeof value === 'string' && this.codeOf.has(value as W);
  }
}

export const CATEGORY = new Codes<Category>('category', CATEGORIES, 'xg_category_name');
export const ACTION = new Codes<Action>('action', ACTIONS, 'xg_action_name');
export const RATE_LIMIT_PROBLEM = new Codes<RateLimitProblem>(
  'rate_limit_problem',
  RATE_LIMIT_PROBLEMS,
  'xg_rate_limit_problem_name',
);
export const AUTH_PROBLEM = new Codes<AuthProblem>('auth_problem', AUTH_PROBLEMS, 'xg_auth_problem_name');
export const REASON = new Codes<Reason>('reason', REASONS, 'xg_reason_name');
export const GIVE_UP = new Codes<GiveUp>('give_up', GIVE_UPS, 'xg_give_up_name');
export const FAILURE_POLICY = new Codes<FailurePolicy>('failure_policy', FAILURE_POLICIES, 'xg_failure_policy_name');
export const STORE_FAILURE_KIND = new Codes<StoreFailureKind>(
  'store_failure_kind',
  STORE_FAILURE_KINDS,
  'xg_store_failure_kind_name',
);
