// The C ABI of libxeroguard (include/xeroguard.h): where the library is found, the ABI and version check, the
// struct mirrors, and one declaration table. Loaded once per thread (the main thread and each worker of pool.ts).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as koffi from 'koffi';

import { errorFor, XeroGuardError } from './errors';

/** The ABI this package was written against (XG_ABI_VERSION). */
export const EXPECTED_ABI_VERSION = 3;
/** This package's version, the crate's (tests/packaging/test_versions.py ties them). */
export const PACKAGE_VERSION = '0.1.0';

// Constants copied from the header; test/native.test.mjs ties each to it.
export const XG_NONE = 0;
export const XG_CLOCK_MONOTONIC = 0;
export const XG_CLOCK_MANUAL = 1;
/** xg_redis_options.replace_limits: which limits win when the prefix holds others. */
export const XG_STORED_LIMITS_MUST_MATCH = 0;
export const XG_STORED_LIMITS_REPLACE = 1;
export const XG_STORED_LIMITS_ADOPT = 2;
export const XG_NO_DEADLINE = 0xffff_ffff_ffff_ffffn;
export const XG_MAX_TENANT_ID_BYTES = 256;
export const XG_MAX_STORE_DEADLINE_MS = 10_000;
export const XG_MAX_KEY_PREFIX_BYTES = 128;
// The lengths of xg_stats' arrays.
export const XG_STATS_REASONS = 9;
export const XG_STATS_FAILURE_POLICIES = 4;
export const XG_STATS_WAIT_BUCKETS = 7;
export const XG_STATS_CATEGORIES = 17;
export const XG_STATS_RATE_LIMIT_PROBLEMS = 6;
export const XG_STATS_STORE_FAILURE_KINDS = 5;
export const XG_STATUS_OK = 0;
export const XG_STATUS_BUFFER_TOO_SMALL = 5;
// xg_wait_outcome and xg_transport_failure have no name functions: their codes are written here.
export const XG_WAIT_OUTCOME_GRANTED = 1;
export const XG_WAIT_OUTCOME_ASK_AGAIN = 2;
export const XG_WAIT_OUTCOME_GIVE_UP = 3;
export const XG_TRANSPORT_FAILURE_NOT_SENT = 1;
export const XG_TRANSPORT_FAILURE_NO_RESPONSE = 2;

// ---------------------------------------------------------------------------------------------------------------
// Finding the library

const LIBRARY_FILE: string =
  process.platform === 'win32'
    ? 'xeroguard.dll'
    : process.platform === 'darwin'
      ? 'libxeroguard.dylib'
      : 'libxeroguard.so';

/** The npm package that carries the library for this platform (the layout of packages with native code). */
export const PLATFORM_PACKAGE = `@xeroguard/${process.platform}-${process.arch}`;

/** The copy this package carries (Linux x64 only, for now): dist/cjs/ -> the package root. */
export const BUNDLED_LIBRARY = path.join(
  __dirname,
  '..',
  '..',
  'prebuilds',
  `${process.platform}-${process.arch}`,
  LIBRARY_FILE,
);

interface Candidate {
  where: string; // how it was found, for messages
  file: string | null; // null: not there (the reason is in `missing`)
  missing?: string;
}

function candidates(): Candidate[] {
  const found: Candidate[] = [];
  const override = process.env.XEROGUARD_LIBRARY;
  if (override) found.push({ where: 'XEROGUARD_LIBRARY', file: override });
  try {
    const dir = path.dirname(require.resolve(`${PLATFORM_PACKAGE}/package.json`));
    found.push({ where: PLATFORM_PACKAGE, file: path.join(dir, LIBRARY_FILE) });
  } catch {
    found.push({ where: PLATFORM_PACKAGE, file: null, missing: 'not installed' });
  }
  if (fs.existsSync(BUNDLED_LIBRARY)) {
    found.push({ where: 'the copy bundled in this package', file: BUNDLED_LIBRARY });
  } else {
    found.push({ where: 'the copy bundled in this package', file: null, missing: `${BUNDLED_LIBRARY} does not exist` });
  }
  return found;
}

function versionParts(text: string): number[] {
  return text
    .split('-', 1)[0]!
    .split('.')
    .slice(0, 3)
    .map((part) => Number.parseInt(part, 10) || 0);
}

function older(a: string, b: string): boolean {
  const x = versionParts(a);
  const y = versionParts(b);
  for (let i = 0; i < 3; i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
  }
  return false;
}

/**
 * Why a library of version `found` serving ABIs `oldest` to `abi` cannot serve this package, or null when it can: its
 * ABI range must hold EXPECTED_ABI_VERSION, and it must be at least as new as the package.
 */
export function refusal(file: string, found: string, abi: number, oldest: number): string | null {
  const fix =
    `install the library this package came with (npm install xeroguard@${PACKAGE_VERSION}), or set XEROGUARD_LIBRARY ` +
    `to one of version ${PACKAGE_VERSION} or later`;
  if (!(oldest <= EXPECTED_ABI_VERSION && EXPECTED_ABI_VERSION <= abi)) {
    const served = oldest === abi ? String(abi) : `${oldest} to ${abi}`;
    return (
      `xeroguard: ${file} (version ${found}) serves ABI ${served} ` +
      `but this package needs ABI ${EXPECTED_ABI_VERSION}; ${fix}`
    );
  }
  if (older(found, PACKAGE_VERSION)) {
    return `xeroguard: ${file} is version ${found}, older than this package (${PACKAGE_VERSION}); ${fix}`;
  }
  return null;
}

/** The error of a failed load: every place tried, and how to fix it. */
export class LibraryLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibraryLoadError';
  }
}

function load(): { lib: koffi.LibraryHandle; file: string; version: string } {
  const tried: string[] = [];
  const list = candidates();
  for (const candidate of list) {
    if (candidate.file === null) {
      tried.push(`${candidate.where}: ${candidate.missing}`);
      continue;
    }
    let lib: koffi.LibraryHandle;
    try {
      lib = koffi.load(candidate.file);
    } catch (error) {
      tried.push(`${candidate.where}: ${candidate.file} (${(error as Error).message})`);
      continue;
    }
    // Checked before any other function is looked up, so an old library is named as such, not as a missing symbol.
    const version = String(lib.func('const char *xg_version(void)')());
    const abi = Number(lib.func('uint32_t xg_abi_version(void)')());
    let oldest = abi;
    try {
      oldest = Number(lib.func('uint32_t xg_abi_oldest_version(void)')());
    } catch {
      // A library older than ABI 3 lacks the function; it served only its own ABI.
    }
    const why = refusal(candidate.file, version, abi, oldest);
    if (why) throw new LibraryLoadError(why);
    if (list[0]!.where === 'XEROGUARD_LIBRARY' && candidate !== list[0]) {
      // A broken override silently replaced by another copy would hide the user's mistake.
      process.emitWarning(`XEROGUARD_LIBRARY=${list[0]!.file} could not be loaded; using ${candidate.file}`, {
        code: 'XEROGUARD_LIBRARY',
      });
    }
    return { lib, file: candidate.file, version };
  }
  throw new LibraryLoadError(
    `xeroguard: cannot load the native library ${LIBRARY_FILE} for ${process.platform}-${process.arch}. ` +
      'Tried, in order: ' +
      tried.join('; ') +
      `. Fix: set XEROGUARD_LIBRARY to the path of a ${LIBRARY_FILE} of version ${PACKAGE_VERSION} or later ` +
      '(built with ' +
      '`cargo build --release` from the xeroguard repository, or installed by `make install`), or install a package ' +
      `that carries one for this platform (${PLATFORM_PACKAGE}).`,
  );
}

const loaded = load();
export const lib = loaded.lib;
/** Where the library was loaded from, and its version. */
export const libraryPath = loaded.file;
export const libraryVersion = loaded.version;

// ---------------------------------------------------------------------------------------------------------------
// Struct mirrors: the header's field names, in order, with its types (test/native.test.mjs compares them with a
// C compiler's sizeof and offsetof).

koffi.opaque('xg_limiter');

export const STRUCTS = {
  xg_header: koffi.struct('xg_header', {
    name: 'const char *',
    name_len: 'size_t',
    value: 'const char *',
    value_len: 'size_t',
  }),
  xg_response: koffi.struct('xg_response', {
    status: 'uint16_t',
    headers: 'const xg_header *',
    header_count: 'size_t',
    body: 'const uint8_t *',
    body_len: 'size_t',
    now_unix_ms: 'int64_t',
  }),
  xg_classification: koffi.struct('xg_classification', {
    struct_size: 'uint32_t',
    status: 'uint16_t',
    category: 'uint32_t',
    action: 'uint32_t',
    retryable: 'uint8_t',
    rate_limit_problem: 'uint32_t',
    auth_problem: 'uint32_t',
    retry_after_ms: 'int64_t',
    recommended_wait_ms: 'int64_t',
    minute_remaining: 'int64_t',
    day_remaining: 'int64_t',
    app_minute_remaining: 'int64_t',
    has_error_number: 'uint8_t',
    error_number: 'int64_t',
    validation_message_count: 'uint32_t',
    warning_count: 'uint32_t',
    failed_element_count: 'uint32_t',
    may_have_been_processed: 'uint8_t',
  }),
  xg_retry_policy: koffi.struct('xg_retry_policy', {
    struct_size: 'uint32_t',
    max_retries: 'uint32_t',
    base_ms: 'uint64_t',
    max_backoff_ms: 'uint64_t',
    jitter_ms: 'uint64_t',
    max_wait_ms: 'uint64_t',
  }),
  xg_backoff_decision: koffi.struct('xg_backoff_decision', {
    struct_size: 'uint32_t',
    retry: 'uint8_t',
    wait_ms: 'uint64_t',
    give_up: 'uint32_t',
  }),
  xg_request: koffi.struct('xg_request', {
    struct_size: 'uint32_t',
    method: 'const char *',
    method_len: 'size_t',
    has_idempotency_key: 'uint8_t',
  }),
  xg_window_limit: koffi.struct('xg_window_limit', {
    limit: 'uint32_t',
    window_ms: 'uint64_t',
    margin_ms: 'uint64_t',
  }),
  xg_limits: koffi.struct('xg_limits', {
    struct_size: 'uint32_t',
    tenant_minute: 'xg_window_limit',
    tenant_day: 'xg_window_limit',
    tenant_concurrency: 'uint32_t',
    app_minute: 'xg_window_limit',
    permit_timeout_ms: 'uint64_t',
    max_tenants: 'uint32_t',
  }),
  xg_redis_options: koffi.struct('xg_redis_options', {
    struct_size: 'uint32_t',
    url: 'const char *',
    url_len: 'size_t',
    key_prefix: 'const char *',
    key_prefix_len: 'size_t',
    deadline_ms: 'uint64_t',
    breaker_cooldown_ms: 'uint64_t',
    on_store_error: 'uint32_t',
    workers: 'uint32_t',
    replace_limits: 'uint8_t',
    tls_ca_file: 'const char *',
    tls_ca_file_len: 'size_t',
  }),
  xg_decision: koffi.struct('xg_decision', {
    struct_size: 'uint32_t',
    granted: 'uint8_t',
    permit: 'uint64_t',
    wait_ms: 'uint64_t',
    reason: 'uint32_t',
    fallback: 'uint32_t',
  }),
  xg_wait_step: koffi.struct('xg_wait_step', {
    struct_size: 'uint32_t',
    outcome: 'uint32_t',
    permit: 'uint64_t',
    wait_ms: 'uint64_t',
    reason: 'uint32_t',
    sleep_ms: 'uint64_t',
    fallback: 'uint32_t',
    waiting: 'uint8_t',
    wait_started_ms: 'uint64_t',
    waited_ms: 'uint64_t',
  }),
  xg_reservation: koffi.struct('xg_reservation', {
    struct_size: 'uint32_t',
    id: 'uint64_t',
    at_ms: 'uint64_t',
    wait_ms: 'uint64_t',
  }),
  xg_tenant_limits: koffi.struct('xg_tenant_limits', {
    struct_size: 'uint32_t',
    minute_limit: 'uint32_t',
    day_limit: 'uint32_t',
    concurrency: 'uint32_t',
  }),
  xg_stats: koffi.struct('xg_stats', {
    struct_size: 'uint32_t',
    shared: 'uint8_t',
    breaker_open: 'uint8_t',
    granted: 'uint64_t',
    refused: koffi.array('uint64_t', XG_STATS_REASONS),
    fallbacks: koffi.array('uint64_t', XG_STATS_FAILURE_POLICIES),
    waits_started: 'uint64_t',
    waits_granted: 'uint64_t',
    waits_given_up: 'uint64_t',
    waits_interrupted: 'uint64_t',
    wait_ms_total: 'uint64_t',
    wait_bucket_le_ms: koffi.array('uint64_t', XG_STATS_WAIT_BUCKETS),
    wait_buckets: koffi.array('uint64_t', XG_STATS_WAIT_BUCKETS),
    responses: koffi.array('uint64_t', XG_STATS_CATEGORIES),
    rate_limited: koffi.array('uint64_t', XG_STATS_RATE_LIMIT_PROBLEMS),
    store_operations: 'uint64_t',
    store_failures: koffi.array('uint64_t', XG_STATS_STORE_FAILURE_KINDS),
    breaker_openings: 'uint64_t',
    replays_pending: 'uint64_t',
  }),
};

export type StructName = keyof typeof STRUCTS;

/** Byte offsets of a struct's fields, as koffi laid them out (the C compiler's layout: the test checks). */
export function offsets(name: StructName): Record<string, number> {
  const out: Record<string, number> = {};
  for (const field of Object.keys(STRUCTS[name].members ?? {})) out[field] = koffi.offsetof(STRUCTS[name], field);
  return out;
}

export function sizeOf(name: StructName): number {
  return koffi.sizeof(STRUCTS[name]);
}

// ---------------------------------------------------------------------------------------------------------------
// The declaration table: every function of include/xeroguard.h, with the header's types. Structs the binding reads
// or fills itself pass as Buffers (koffi hands a Buffer's memory to a pointer parameter); `char **` outputs as
// `void **`, so the string can be freed once read.

type TypeSpec = string | koffi.TypeObject | ReturnType<typeof koffi.out>;

const STRING_OUT = koffi.out(koffi.pointer('void *'));
const LIMITER_OUT = koffi.out(koffi.pointer('xg_limiter *'));
const SIZE_OUT = koffi.out(koffi.pointer('size_t'));
const U64_OUT = koffi.out(koffi.pointer('uint64_t'));
const U8_OUT = koffi.out(koffi.pointer('uint8_t'));

export const DECLARATIONS: ReadonlyArray<readonly [string, TypeSpec, readonly TypeSpec[]]> = [
  ['xg_last_error_message', 'int32_t', ['char *', 'size_t', SIZE_OUT]],
  ['xg_status_name', 'const char *', ['int32_t']],
  ['xg_string_free', 'void', ['void *']],
  ['xg_version', 'const char *', []],
  ['xg_abi_version', 'uint32_t', []],
  ['xg_abi_oldest_version', 'uint32_t', []],
  ['xg_classify', 'int32_t', ['const xg_response *', 'xg_classification *', STRING_OUT]],
  [
    'xg_classify_flat',
    'int32_t',
    [
      'uint16_t',
      'const uint8_t *',
      'size_t',
      'const uint8_t *',
      'size_t',
      'int64_t',
      'xg_classification *',
      STRING_OUT,
    ],
  ],
  ['xg_body_bytes_to_classify', 'int32_t', ['uint16_t', 'const uint8_t *', 'size_t', U64_OUT]],
  ['xg_classify_raw', 'int32_t', ['const uint8_t *', 'size_t', 'int64_t', 'xg_classification *', STRING_OUT]],
  ['xg_retry_policy_default', 'xg_retry_policy', []],
  [
    'xg_backoff',
    'int32_t',
    ['const xg_classification *', 'uint32_t', 'const xg_retry_policy *', 'xg_backoff_decision *'],
  ],
  [
    'xg_resend',
    'int32_t',
    [
      'const xg_request *',
      'const xg_classification *',
      'uint32_t',
      'uint32_t',
      'const xg_retry_policy *',
      'xg_backoff_decision *',
    ],
  ],
  ['xg_method_is_write', 'int32_t', ['const char *', 'size_t', U8_OUT]],
  ['xg_category_name', 'const char *', ['uint32_t']],
  ['xg_action_name', 'const char *', ['uint32_t']],
  ['xg_rate_limit_problem_name', 'const char *', ['uint32_t']],
  ['xg_auth_problem_name', 'const char *', ['uint32_t']],
  ['xg_give_up_name', 'const char *', ['uint32_t']],
  ['xg_failure_policy_name', 'const char *', ['uint32_t']],
  ['xg_reason_name', 'const char *', ['uint32_t']],
  ['xg_refusal_words', 'int32_t', ['uint32_t', 'uint64_t', 'uint32_t', 'char *', 'size_t', SIZE_OUT]],
  ['xg_duration_words', 'int32_t', ['uint64_t', 'char *', 'size_t', SIZE_OUT]],
  ['xg_limits_default', 'xg_limits', []],
  ['xg_limits_exact', 'xg_limits', []],
  ['xg_limiter_new', 'int32_t', ['const xg_limits *', 'uint32_t', LIMITER_OUT]],
  ['xg_redis_options_default', 'xg_redis_options', []],
  ['xg_limiter_new_redis', 'int32_t', ['const xg_limits *', 'const xg_redis_options *', 'uint32_t', LIMITER_OUT]],
  ['xg_limiter_inspect_redis', 'int32_t', ['const xg_redis_options *', 'uint32_t', LIMITER_OUT]],
  ['xg_limiter_free', 'void', ['xg_limiter *']],
  ['xg_limiter_now_ms', 'int32_t', ['const xg_limiter *', U64_OUT]],
  ['xg_limiter_limits', 'int32_t', ['const xg_limiter *', koffi.inout(koffi.pointer('xg_limits'))]],
  ['xg_limiter_advance_ms', 'int32_t', ['const xg_limiter *', 'uint64_t']],
  ['xg_limiter_set_now_ms', 'int32_t', ['const xg_limiter *', 'uint64_t']],
  ['xg_limiter_acquire', 'int32_t', ['const xg_limiter *', 'const char *', 'size_t', 'xg_decision *']],
  ['xg_limiter_acquire_wait', 'int32_t', ['const xg_limiter *', 'const char *', 'size_t', 'uint64_t', 'xg_decision *']],
  ['xg_limiter_deadline_ms', 'int32_t', ['const xg_limiter *', 'uint64_t', U64_OUT]],
  [
    'xg_limiter_acquire_until',
    'int32_t',
    ['const xg_limiter *', 'const char *', 'size_t', 'uint64_t', 'uint64_t', 'xg_wait_step *'],
  ],
  ['xg_limiter_interrupt', 'int32_t', ['const xg_limiter *']],
  ['xg_limiter_peek', 'int32_t', ['const xg_limiter *', 'const char *', 'size_t', 'xg_decision *']],
  ['xg_limiter_record', 'int32_t', ['const xg_limiter *', 'const char *', 'size_t']],
  ['xg_limiter_release', 'int32_t', ['const xg_limiter *', 'uint64_t']],
  ['xg_limiter_reserve', 'int32_t', ['const xg_limiter *', 'const char *', 'size_t', 'xg_reservation *']],
  ['xg_limiter_cancel', 'int32_t', ['const xg_limiter *', 'uint64_t']],
  ['xg_limiter_observe', 'int32_t', ['const xg_limiter *', 'const char *', 'size_t', 'const xg_classification *']],
  ['xg_limiter_observe_raw', 'int32_t', ['const xg_limiter *', 'const char *', 'size_t', 'const uint8_t *', 'size_t']],
  ['xg_limiter_snapshot_json', 'int32_t', ['const xg_limiter *', 'const char *', 'size_t', STRING_OUT]],
  [
    'xg_limiter_set_tenant_limits',
    'int32_t',
    ['const xg_limiter *', 'const char *', 'size_t', 'const xg_tenant_limits *'],
  ],
  ['xg_limiter_stats', 'int32_t', ['const xg_limiter *', 'xg_stats *']],
  ['xg_store_failure_kind_name', 'const char *', ['uint32_t']],
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Native = (...args: any[]) => any;

/** Every declared function, by its C name. */
export const fn: Record<string, Native> = {};
for (const [name, result, args] of DECLARATIONS) {
  try {
    fn[name] = lib.func(name, result, args as TypeSpec[]);
  } catch (error) {
    throw new LibraryLoadError(
      `xeroguard: ${libraryPath} lacks the function ${name} (${(error as Error).message}); it is not a matching build`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors and strings

/**
 * Text a library function writes into a caller's buffer, as xg_last_error_message does: `fill(buf, size, needed)`
 * returns a status. It runs on the calling thread right after the call whose message it reads.
 */
export function buffered(fill: (buf: Buffer, size: number, needed: number[]) => number): string {
  let buf = Buffer.alloc(256);
  const needed = [0];
  let status = fill(buf, buf.length, needed);
  if (status === XG_STATUS_BUFFER_TOO_SMALL) {
    buf = Buffer.alloc(needed[0]!);
    status = fill(buf, buf.length, needed);
  }
  if (status !== XG_STATUS_OK) throw errorFor(status, statusName(status), `${statusName(status)} while reading text`);
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

/** The calling thread's last error message (xg_last_error_message): read right after the failed call. */
export function lastErrorMessage(): string {
  return buffered((buf, size, needed) => fn.xg_last_error_message!(buf, size, needed) as number);
}

export function statusName(status: number): string {
  return String(fn.xg_status_name!(status));
}

/** An error for a failed status, with the library's message (read on this thread, right after the call). */
export function failure(status: number, functionName: string): XeroGuardError {
  return errorFor(status, statusName(status), lastErrorMessage() || functionName);
}

/** Throws the library's error for a status other than OK. */
export function check(status: number, functionName: string): void {
  if (status !== XG_STATUS_OK) throw failure(status, functionName);
}

/** Copies a library-owned string (a `char **` output) and frees it. */
export function takeString(pointer: unknown): string {
  if (pointer === null || pointer === undefined || pointer === 0n)
    throw new XeroGuardError('the library returned no string');
  try {
    return String(koffi.decode(pointer, 'char', -1));
  } finally {
    fn.xg_string_free!(pointer);
  }
}
