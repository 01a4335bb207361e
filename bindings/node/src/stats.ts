// A limiter's statistics (xg_limiter_stats) as a frozen `Stats`, and what the binding logs: waits (debug), the
// failure policy deciding while the shared store is out of reach (a warning once per outage, then a count) and the
// store's breaker (info), as the Python binding logs them on its `xeroguard` logger and the C# one raises them as
// events.
//
// The library counts everything once; the binding only reads the figures, and learns of an outage from what the
// library says: a decision's `fallback` (set while the failure policy decides) and the stats' breaker state.

import { durationWords, refusalWords } from './classify';
import { XG_NO_DEADLINE } from './native';
import type { RawStats } from './ops';
import {
  CATEGORY,
  Category,
  Codes,
  FAILURE_POLICY,
  FailurePolicy,
  RATE_LIMIT_PROBLEM,
  RateLimitProblem,
  REASON,
  Reason,
  STORE_FAILURE_KIND,
  StoreFailureKind,
} from './vocabulary';

/**
 * What a limiter decided, waited for and was told since it was made (xg_limiter_stats): the C names in camelCase,
 * durations in milliseconds as everywhere in this package; Python's `Stats` has the same figures (in seconds).
 * Records are keyed by vocabulary words and hold every word, zero counts included.
 *
 * Decisions are `acquire`'s answers and each wait's first answer and final grant, not the re-asks in between:
 * `granted` is exactly the permits handed out, `refused` (by reason) the refusals callers were told of. `peek` and
 * `reserve` are not counted. A wait (`acquireWait`, `withPermit`, a guard's wait) whose first answer was a refusal
 * counts in `waitsStarted`; when it ends, in `waitsGranted`, `waitsGivenUp` (the timeout) or `waitsInterrupted`
 * (`interrupt()` or an error), with its length in `waitMsTotal` and `waitBuckets`. A wait abandoned by its caller (an
 * AbortSignal) never ends. `fallbacks` counts the decisions a failure policy made because the shared store could not;
 * `shared` and the store and breaker figures describe the store (all zero for a limiter of this process).
 */
export interface Stats {
  readonly granted: number;
  readonly refused: Readonly<Record<Reason, number>>;
  readonly fallbacks: Readonly<Record<FailurePolicy, number>>;
  readonly waitsStarted: number;
  readonly waitsGranted: number;
  readonly waitsGivenUp: number;
  readonly waitsInterrupted: number;
  readonly waitMsTotal: number;
  /** Each bucket's upper bound in ms (inclusive; the last is Infinity). */
  readonly waitBucketLeMs: readonly number[];
  /** Ended waits per bucket (not cumulative). */
  readonly waitBuckets: readonly number[];
  readonly responses: Readonly<Record<Category, number>>;
  readonly rateLimited: Readonly<Record<RateLimitProblem, number>>;
  readonly shared: boolean;
  readonly breakerOpen: boolean;
  readonly storeOperations: number;
  readonly storeFailures: Readonly<Record<StoreFailureKind, number>>;
  readonly breakerOpenings: number;
  readonly replaysPending: number;
  /** All refusals, whatever their reason. */
  readonly refusedTotal: number;
  /** Waits that ended, however. */
  readonly waitsEnded: number;
}

/** Counts indexed by code, keyed by the vocabulary's words (codes this package does not know are left out). */
function byWord<W extends string>(codes: Codes<W>, counts: readonly number[]): Readonly<Record<W, number>> {
  const out = {} as Record<W, number>;
  for (const [code, word] of [...codes.byCode.entries()].sort((a, b) => a[0] - b[0])) {
    if (word !== null && code < counts.length) out[word] = counts[code]!;
  }
  return Object.freeze(out);
}

/** @internal */
export function statsFrom(raw: RawStats): Stats {
  const refused = byWord(REASON, raw.refused);
  return Object.freeze({
    granted: raw.granted,
    refused,
    fallbacks: byWord(FAILURE_POLICY, raw.fallbacks),
    waitsStarted: raw.waitsStarted,
    waitsGranted: raw.waitsGranted,
    waitsGivenUp: raw.waitsGivenUp,
    waitsInterrupted: raw.waitsInterrupted,
    waitMsTotal: raw.waitMsTotal,
    waitBucketLeMs: Object.freeze(raw.waitBucketLeMs.map((ms) => (ms === XG_NO_DEADLINE ? Infinity : Number(ms)))),
    waitBuckets: Object.freeze([...raw.waitBuckets]),
    responses: byWord(CATEGORY, raw.responses),
    rateLimited: byWord(RATE_LIMIT_PROBLEM, raw.rateLimited),
    shared: raw.shared,
    breakerOpen: raw.breakerOpen,
    storeOperations: raw.storeOperations,
    storeFailures: byWord(STORE_FAILURE_KIND, raw.storeFailures),
    breakerOpenings: raw.breakerOpenings,
    replaysPending: raw.replaysPending,
    refusedTotal: Object.values<number>(refused).reduce((a, b) => a + b, 0),
    waitsEnded: raw.waitsGranted + raw.waitsGivenUp + raw.waitsInterrupted,
  });
}

/** Where the limiter writes: console-compatible, every method optional (a pino or winston logger fits too). */
export interface Logger {
  debug?(message: string): void;
  info?(message: string): void;
  warn?(message: string): void;
}

export type Level = 'debug' | 'info' | 'warn';

/**
 * Writes one line to `logger`. A warning with nowhere to go becomes a process warning (as Python's logging prints its
 * warnings when nothing is configured); debug and info lines without a logger are dropped. A logger that throws
 * never fails the call that logged.
 */
export function writeLog(logger: Logger | undefined, level: Level, message: string): void {
  const write = logger?.[level];
  try {
    if (write !== undefined) write.call(logger, message);
    else if (level === 'warn') process.emitWarning(message, { code: 'XEROGUARD_STORE_OUTAGE' });
  } catch {
    // a log line is never worth a failed call
  }
}

/** Whether `logger` takes lines of `level` (so their words are made only when they are wanted). */
export function logs(logger: Logger | undefined, level: Level): boolean {
  return typeof logger?.[level] === 'function';
}

export function tenantForLog(t: Uint8Array): string {
  return t.length === 0 ? '(tenantless)' : Buffer.from(t.buffer, t.byteOffset, t.byteLength).toString('utf8');
}

export function waitStartedLine(tenant: string, reason: Reason | null, waitMs: number): string {
  const words = reason === null ? 'refused' : refusalWords(reason, waitMs);
  return `xeroguard: tenant ${tenant} waits for a permit: ${words}`;
}

/** `how`: granted, gave up, interrupted, or what ended it; `reason`: the refusal that started the wait. */
export function waitEndedLine(tenant: string, how: string, reason: Reason | null, waitedMs: number): string {
  return `xeroguard: tenant ${tenant} waited ${durationWords(waitedMs)} for a permit (${reason ?? 'refused'}): ${how}`;
}

interface Outage {
  policy: FailurePolicy;
  started: number;
  reminded: number;
  decisions: number;
}

function lasted(outage: Outage, now: number): string {
  return durationWords(Math.max(0, Math.round(now - outage.started)));
}

/** @internal One limiter's log of outages and of its breaker. */
export class Watch {
  /** While an outage lasts, how often it is recalled (a warning with the count so far), in ms. */
  static remindEveryMs = 60_000;

  outage: Outage | null = null;
  #breakerOpen = false;
  #breakerOpenings = 0;

  constructor(readonly clock: () => number = () => performance.now()) {}

  /**
   * A decision's `fallback` (null: the store decided). Returns true when an outage began or ended, so the caller
   * reads the stats (and the breaker's state with them).
   */
  decided(fallback: FailurePolicy | null, logger: Logger | undefined): boolean {
    const now = this.clock();
    const outage = this.outage;
    if (fallback === null) {
      if (outage === null) return false;
      this.outage = null;
      writeLog(
        logger,
        'info',
        `xeroguard: the shared store answers again after ${lasted(outage, now)}; meanwhile the ${outage.policy} ` +
          `failure policy made ${outage.decisions} decisions`,
      );
      return true;
    }
    if (outage === null) {
      this.outage = { policy: fallback, started: now, reminded: now, decisions: 1 };
      writeLog(
        logger,
        'warn',
        `xeroguard: the shared store cannot be reached: the ${fallback} failure policy decides until it answers ` +
          '(logged once; a count follows)',
      );
      return true;
    }
    outage.decisions++;
    if (now - outage.reminded >= Watch.remindEveryMs) {
      outage.reminded = now;
      writeLog(
        logger,
        'warn',
        `xeroguard: the shared store is still out of reach after ${lasted(outage, now)}: ` +
          `${outage.decisions} decisions by the ${outage.policy} failure policy so far`,
      );
    }
    return false;
  }

  /** Logs the breaker's changes since the last reading. */
  saw(stats: Stats, logger: Logger | undefined): void {
    const wasOpen = this.#breakerOpen;
    const opened = stats.breakerOpenings - this.#breakerOpenings;
    this.#breakerOpen = stats.breakerOpen;
    this.#breakerOpenings = stats.breakerOpenings;
    if (stats.breakerOpen && !wasOpen) {
      writeLog(
        logger,
        'info',
        `xeroguard: the store's breaker is open (opened ${stats.breakerOpenings} times so far): the failure policy ` +
          'decides until it closes',
      );
    } else if (wasOpen && !stats.breakerOpen) {
      writeLog(logger, 'info', "xeroguard: the store's breaker is closed: the store decides again");
    } else if (opened > 0) {
      writeLog(
        logger,
        'info',
        `xeroguard: the store's breaker opened ${opened} times since the last reading (now ` +
          `${stats.breakerOpen ? 'open' : 'closed'})`,
      );
    }
  }
}
