//! Classification over the C ABI: `xg_classify`, `xg_classify_raw`, the retry policy, and vocabulary names.

use std::ffi::c_char;
use std::time::{Duration, SystemTime};

use super::boundary::*;
use crate::classify::{
    Classification, MAX_BODY_BYTES, MAX_HEADERS, SUCCESS_BODY_READ_CAP, body_bytes_to_classify, classify, classify_raw,
};
use crate::retry::{Backoff, Outcome, Request, RetryPolicy, backoff_from_parts, is_write, resend};
use crate::vocab::{
    Action, AuthProblem, Category, FailurePolicy, GiveUp, RateLimitProblem, Reason, human_duration, refusal_in_words,
};

/// The most headers `xg_classify` accepts (`XG_STATUS_TOO_LARGE` beyond).
pub const XG_MAX_HEADERS: usize = 1024;
/// Body bytes classification reads; a longer body is read as if truncated there.
pub const XG_MAX_BODY_BYTES: usize = 33_554_432;
/// The longest header name or value accepted, in bytes (`XG_STATUS_TOO_LARGE` beyond).
pub const XG_MAX_HEADER_BYTES: usize = 65_536;
/// `rate_limit_problem` and `auth_problem` are 0 when there is none; `reason` is 0 when granted.
pub const XG_NONE: u32 = 0;
/// Integer fields of `xg_classification` hold -1 where the result is unknown (JSON null).
pub const XG_UNKNOWN: i64 = -1;

const _: () = assert!(XG_MAX_HEADERS == MAX_HEADERS && XG_MAX_BODY_BYTES == MAX_BODY_BYTES);

/// One response header: UTF-8 name and value as (pointer, length); they need not be NUL-terminated.
#[repr(C)]
pub struct xg_header {
    pub name: *const c_char,
    pub name_len: usize,
    pub value: *const c_char,
    pub value_len: usize,
}

/// A response to classify. `headers` may be NULL when `header_count` is 0; `body` may be NULL when `body_len` is
/// 0 (bodies are bytes and need not be UTF-8). `now_unix_ms` is the time against which a `Retry-After` HTTP-date
/// is measured when the response has no `Date` header; 0 means "read the system clock".
#[repr(C)]
pub struct xg_response {
    pub status: u16,
    pub headers: *const xg_header,
    pub header_count: usize,
    pub body: *const u8,
    pub body_len: usize,
    pub now_unix_ms: i64,
}

/// The scalar part of a classification (xero-reference §5). Set `struct_size = sizeof(xg_classification)` before
/// passing it. Enum fields hold `xg_category` / `xg_action` / `xg_rate_limit_problem` / `xg_auth_problem` codes
/// (0 = none for the last two); integer fields hold `XG_UNKNOWN` (-1) where the JSON form has null. The lists
/// (messages, warnings, failed elements) and strings are in the JSON form; their counts are here.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct xg_classification {
    pub struct_size: u32,
    pub status: u16,
    pub category: u32,
    pub action: u32,
    /// 1 exactly when `action` is `XG_ACTION_RETRY` (flags are 0 or 1; as input, anything else is refused).
    pub retryable: u8,
    pub rate_limit_problem: u32,
    pub auth_problem: u32,
    pub retry_after_ms: i64,
    pub recommended_wait_ms: i64,
    pub minute_remaining: i64,
    pub day_remaining: i64,
    pub app_minute_remaining: i64,
    /// 1 when `error_number` holds the body's ErrorNumber.
    pub has_error_number: u8,
    pub error_number: i64,
    pub validation_message_count: u32,
    pub warning_count: u32,
    pub failed_element_count: u32,
    /// 1 when the server may have carried the request out (xero-reference §8: 500, 502, 504, other 5xx, Finance
    /// `request-timeout`, and every result that is not retryable), 0 when it certainly did not (429, 503 rate limit,
    /// offline organisation or outage, OAuth1 `nonce_used`); `xg_resend` reads it.
    pub may_have_been_processed: u8,
}

impl SizedStruct for xg_classification {}
impl SizedStruct for xg_retry_policy {}
impl SizedStruct for xg_backoff_decision {}

fn known<T: Into<i64>>(value: Option<T>) -> i64 {
    value.map_or(XG_UNKNOWN, Into::into)
}

fn count(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl xg_classification {
    pub(crate) fn from_classification(c: &Classification) -> Self {
        xg_classification {
            struct_size: 0, // set by SizedOut::write

            status: c.status,
            category: c.category.code(),
            action: c.action.code(),
            retryable: u8::from(c.retryable()),
            rate_limit_problem: c.rate_limit_problem.map_or(XG_NONE, RateLimitProblem::code),
            auth_problem: c.auth_problem.map_or(XG_NONE, AuthProblem::code),
            retry_after_ms: known(c.retry_after_ms.map(|v| v as i64)),
            recommended_wait_ms: known(c.recommended_wait_ms.map(|v| v as i64)),
            minute_remaining: known(c.minute_remaining),
            day_remaining: known(c.day_remaining),
            app_minute_remaining: known(c.app_minute_remaining),
            has_error_number: u8::from(c.error_number.is_some()),
            error_number: c.error_number.unwrap_or(0),
            validation_message_count: count(c.validation_messages.len()),
            warning_count: count(c.warnings.len()),
            failed_element_count: count(c.failed_elements.len()),
            may_have_been_processed: u8::from(c.may_have_been_processed()),
        }
    }
}

/// Reads a classification handed back as input (to observe, backoff, resend): its flags must be 0 or 1.
///
/// # Safety
/// As [`read_sized`].
pub(crate) unsafe fn classification_arg(ptr: *const xg_classification, what: &str) -> FfiResult<xg_classification> {
    // SAFETY: forwarded contract.
    let c = unsafe { read_sized(ptr, what, xg_classification::default())? };
    flag(c.retryable, what, "retryable")?;
    flag(c.has_error_number, what, "has_error_number")?;
    flag(c.may_have_been_processed, what, "may_have_been_processed")?;
    Ok(c)
}

fn system_time(now_unix_ms: i64) -> SystemTime {
    if now_unix_ms == 0 {
        SystemTime::now()
    } else if now_unix_ms > 0 {
        SystemTime::UNIX_EPOCH + Duration::from_millis(now_unix_ms as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_millis(now_unix_ms.unsigned_abs())
    }
}

/// Checks the outputs, then writes them: the struct (if given) and the JSON (if asked for).
unsafe fn deliver(c: &Classification, out: *mut xg_classification, json_out: *mut *mut c_char) -> FfiResult {
    if out.is_null() && json_out.is_null() {
        return Err(FfiError::new(XG_STATUS_NULL_POINTER, "out and json_out are both NULL: nothing to return"));
    }
    if !out.is_null() {
        let out = unsafe { sized_out(out, "out")? };
        out.write(xg_classification::from_classification(c));
    }
    if !json_out.is_null() {
        let text = serde_json::to_string(c).expect("a classification always serializes");
        // SAFETY: a non-NULL `json_out` points to a caller-owned `char *`.
        unsafe { *json_out = owned_c_string(text) };
    }
    Ok(())
}

/// Classifies one response (xero-reference §6). Fills `*out` (if not NULL; set its `struct_size` first) and/or
/// stores in `*json_out` (if not NULL) the full §5 JSON object, a library-owned string to free with
/// `xg_string_free`. At least one of them must be given. Header names and values must be UTF-8; malformed bodies
/// never fail, they classify as best they can. Outputs are written only when `XG_STATUS_OK` is returned.
/// Thread safety: safe to call from any number of threads at once; it shares no state.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_classify(
    response: *const xg_response,
    out: *mut xg_classification,
    json_out: *mut *mut c_char,
) -> xg_status {
    run("xg_classify", || {
        // SAFETY (all blocks below): pointers come from the caller under the documented contract.
        let response = unsafe { in_ref(response, "response")? };
        if response.header_count > XG_MAX_HEADERS {
            return Err(FfiError::new(
                XG_STATUS_TOO_LARGE,
                format!("header_count is {}; the limit is {XG_MAX_HEADERS}", response.header_count),
            ));
        }
        let raw_headers: &[xg_header] = match (response.header_count, response.headers.is_null()) {
            (0, _) => &[],
            (n, true) => {
                return Err(FfiError::new(
                    XG_STATUS_NULL_POINTER,
                    format!("response->headers is NULL but header_count is {n}"),
                ));
            }
            (n, false) => unsafe { std::slice::from_raw_parts(response.headers, n) },
        };
        let mut headers = Vec::with_capacity(raw_headers.len());
        for (i, h) in raw_headers.iter().enumerate() {
            let name = unsafe { text_arg(h.name, h.name_len, "name", XG_MAX_HEADER_BYTES) }.map_err(at_header(i))?;
            let value =
                unsafe { text_arg(h.value, h.value_len, "value", XG_MAX_HEADER_BYTES) }.map_err(at_header(i))?;
            headers.push((name, value));
        }
        let body = unsafe { bytes_arg(response.body, response.body_len, "response->body", XG_MAX_BODY_BYTES)? };
        let classification = classify(response.status, &headers, body, system_time(response.now_unix_ms));
        unsafe { deliver(&classification, out, json_out) }
    })
}

/// Classifies one response given as two flat buffers, as `xg_classify` does: `headers` holds every name and value
/// in order, separated by NUL bytes (`"Name\0value\0Name\0value"`; NULL, 0 for no headers), so a binding passes
/// its header text as one buffer instead of building an `xg_header` array (HTTP forbids NUL in header fields, RFC
/// 9110 §5.5). An odd number of fields is `XG_STATUS_INVALID_ARGUMENT`; UTF-8, the per-field and the header-count
/// limits are `xg_classify`'s. `body`, `now_unix_ms`, `out` and `json_out` as in `xg_response` and `xg_classify`.
/// Thread safety: safe to call from any number of threads at once; it shares no state.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_classify_flat(
    status: u16,
    headers: *const u8,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    now_unix_ms: i64,
    out: *mut xg_classification,
    json_out: *mut *mut c_char,
) -> xg_status {
    run("xg_classify_flat", || {
        let limit = XG_MAX_HEADERS * 2 * (XG_MAX_HEADER_BYTES + 1);
        // SAFETY (both): pointers come from the caller under the documented contract.
        let text = unsafe { text_arg(headers.cast(), headers_len, "headers", limit)? };
        let body = unsafe { bytes_arg(body, body_len, "body", XG_MAX_BODY_BYTES)? };
        let headers = flat_headers(text)?;
        unsafe { deliver(&classify(status, &headers, body, system_time(now_unix_ms)), out, json_out) }
    })
}

/// Names the header an error is about; the index goes into the message only on failure, so the success path
/// formats nothing.
fn at_header(index: usize) -> impl Fn(FfiError) -> FfiError {
    move |e| FfiError::new(e.status, format!("headers[{index}]: {}", e.message))
}

/// `"Name\0value\0Name\0value"` as (name, value) pairs, within `xg_classify`'s limits.
fn flat_headers(text: &str) -> FfiResult<Vec<(&str, &str)>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut fields = text.split('\0');
    let mut headers = Vec::new();
    while let Some(name) = fields.next() {
        let Some(value) = fields.next() else {
            return Err(FfiError::new(
                XG_STATUS_INVALID_ARGUMENT,
                format!("headers holds an odd number of NUL-separated fields: header {} has no value", headers.len()),
            ));
        };
        check_len("name", name.len(), XG_MAX_HEADER_BYTES)
            .and_then(|()| check_len("value", value.len(), XG_MAX_HEADER_BYTES))
            .map_err(at_header(headers.len()))?;
        if headers.len() == XG_MAX_HEADERS {
            return Err(FfiError::new(XG_STATUS_TOO_LARGE, format!("more than {XG_MAX_HEADERS} headers")));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

/// The most of a 2xx body `xg_body_bytes_to_classify` asks for.
pub const XG_SUCCESS_BODY_READ_CAP: usize = 1_048_576;

const _: () = assert!(XG_SUCCESS_BODY_READ_CAP == SUCCESS_BODY_READ_CAP);

/// How many body bytes an HTTP client integration should read to classify a response with this status and
/// `Content-Type` (bytes, pointer + length; NULL, 0 when absent), stored in `*out`: every error body (up to
/// `XG_MAX_BODY_BYTES`); a 2xx JSON, XML or text body up to `XG_SUCCESS_BODY_READ_CAP` (it can carry errors: a
/// `summarizeErrors=false` batch, an XPM `<Status>ERROR</Status>`; a longer one is classified from what was read and
/// must still reach the caller whole); 0 for any other 2xx (a download: classify from status and headers, stream
/// the body to the caller). Every binding follows this one rule. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_body_bytes_to_classify(
    status: u16,
    content_type: *const u8,
    content_type_len: usize,
    out: *mut u64,
) -> xg_status {
    run("xg_body_bytes_to_classify", || {
        let content_type = unsafe { bytes_arg(content_type, content_type_len, "content_type", XG_MAX_HEADER_BYTES)? };
        let out = unsafe { out_ref(out, "out")? };
        let text = (!content_type.is_empty()).then(|| String::from_utf8_lossy(content_type));
        *out = body_bytes_to_classify(status, text.as_deref()) as u64;
        Ok(())
    })
}

pub(crate) fn raw_error(e: crate::RawError) -> FfiError {
    let status = match e {
        crate::RawError::TooManyHeaders => XG_STATUS_TOO_LARGE,
        crate::RawError::NoStatusLine | crate::RawError::BadStatusCode => XG_STATUS_MALFORMED_RESPONSE,
    };
    FfiError::new(status, e.to_string())
}

/// The most bytes of a raw response read: headers first, then a body up to its cap.
pub(crate) const RAW_READ_CAP: usize = 2 * XG_MAX_BODY_BYTES;

/// Classifies a raw HTTP response as bytes (as `curl -i` saves it: status line, headers, a blank line with CRLF
/// or LF, the body). Outputs as for `xg_classify`. Header text that is not UTF-8 is decoded leniently.
/// Returns `XG_STATUS_MALFORMED_RESPONSE` when there is no status line, `XG_STATUS_TOO_LARGE` beyond
/// `XG_MAX_HEADERS` header lines. Thread safety: as `xg_classify`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_classify_raw(
    raw: *const u8,
    raw_len: usize,
    now_unix_ms: i64,
    out: *mut xg_classification,
    json_out: *mut *mut c_char,
) -> xg_status {
    run("xg_classify_raw", || {
        let raw = unsafe { bytes_arg(raw, raw_len, "raw", RAW_READ_CAP)? };
        let classification = classify_raw(raw, system_time(now_unix_ms)).map_err(raw_error)?;
        unsafe { deliver(&classification, out, json_out) }
    })
}

/// A retry policy (see `xg_retry_policy_default` for the defaults).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct xg_retry_policy {
    pub struct_size: u32,
    /// Retries allowed after the first attempt.
    pub max_retries: u32,
    /// The first backoff; it doubles with each retry, up to `max_backoff_ms`.
    pub base_ms: u64,
    pub max_backoff_ms: u64,
    /// Up to this much random time is added to each wait.
    pub jitter_ms: u64,
    /// A needed wait longer than this is not slept through: `xg_backoff` gives up instead.
    pub max_wait_ms: u64,
}

impl From<&xg_retry_policy> for RetryPolicy {
    fn from(p: &xg_retry_policy) -> Self {
        RetryPolicy {
            max_retries: p.max_retries,
            base_ms: p.base_ms,
            max_backoff_ms: p.max_backoff_ms,
            jitter_ms: p.jitter_ms,
            max_wait_ms: p.max_wait_ms,
        }
    }
}

/// The outcome of `xg_backoff` and `xg_resend`: retry after `wait_ms`, or give up (`give_up` is the `xg_give_up`
/// code saying why; `wait_ms` then holds the wait that was too long, else 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct xg_backoff_decision {
    pub struct_size: u32,
    /// 1: retry after `wait_ms`; 0: give up (`give_up` says why).
    pub retry: u8,
    pub wait_ms: u64,
    pub give_up: u32,
}

/// What `xg_retry_policy_default` returns after an internal fault: `struct_size` 0, which every function refuses.
const NEVER_VALID_POLICY: xg_retry_policy =
    xg_retry_policy { struct_size: 0, max_retries: 0, base_ms: 0, max_backoff_ms: 0, jitter_ms: 0, max_wait_ms: 0 };

fn action_of(c: &xg_classification) -> FfiResult<Action> {
    Action::from_code(c.action)
        .ok_or_else(|| FfiError::new(XG_STATUS_INVALID_ARGUMENT, format!("unknown action code {}", c.action)))
}

fn backoff_to_c(decision: Backoff) -> xg_backoff_decision {
    match decision {
        Backoff::RetryAfter { wait_ms } => xg_backoff_decision { struct_size: 0, retry: 1, wait_ms, give_up: XG_NONE },
        Backoff::GiveUp { reason, wait_ms } => {
            xg_backoff_decision { struct_size: 0, retry: 0, wait_ms, give_up: reason.code() }
        }
    }
}

/// The policy a caller gave, or the defaults for NULL.
///
/// # Safety
/// As [`read_sized`].
unsafe fn policy_arg(policy: *const xg_retry_policy) -> FfiResult<RetryPolicy> {
    match policy.is_null() {
        true => Ok(RetryPolicy::default()),
        // SAFETY: forwarded contract.
        false => Ok(RetryPolicy::from(&unsafe { read_sized(policy, "policy", xg_retry_policy_default())? })),
    }
}

/// The default retry policy: 5 retries, 500 ms doubling to at most 30 s, up to 250 ms jitter, never waiting more
/// than 5 minutes. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_retry_policy_default() -> xg_retry_policy {
    run_value("xg_retry_policy_default", NEVER_VALID_POLICY, || {
        let d = RetryPolicy::default();
        xg_retry_policy {
            struct_size: std::mem::size_of::<xg_retry_policy>() as u32,
            max_retries: d.max_retries,
            base_ms: d.base_ms,
            max_backoff_ms: d.max_backoff_ms,
            jitter_ms: d.jitter_ms,
            max_wait_ms: d.max_wait_ms,
        }
    })
}

/// Decides whether retry number `attempt` (1 = the first retry) of a classified response should happen, and
/// after how long: capped exponential backoff with jitter, never shorter than the classification's
/// `recommended_wait_ms` (which honours Retry-After). `policy` may be NULL for the defaults.
/// Thread safety: safe from any number of threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_backoff(
    classification: *const xg_classification,
    attempt: u32,
    policy: *const xg_retry_policy,
    out: *mut xg_backoff_decision,
) -> xg_status {
    run("xg_backoff", || {
        let c = unsafe { classification_arg(classification, "classification")? };
        let policy = unsafe { policy_arg(policy)? };
        let out = unsafe { sized_out(out, "out")? };
        let recommended = u64::try_from(c.recommended_wait_ms).ok();
        let decision = backoff_from_parts(action_of(&c)?.is_retry(), recommended, attempt, &policy);
        out.write(backoff_to_c(decision));
        Ok(())
    })
}

/// The request an outcome answers, for `xg_resend`: its HTTP method (UTF-8, pointer + length) and whether it
/// carries an `Idempotency-Key` header.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct xg_request {
    pub struct_size: u32,
    pub method: *const c_char,
    pub method_len: usize,
    /// 1 when the request carries an `Idempotency-Key` header (0 or 1).
    pub has_idempotency_key: u8,
}

impl SizedStruct for xg_request {}

/// What happened to an attempt that got no HTTP response (`xg_resend`'s `transport_failure`; 0 = a response).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportFailure {
    /// Nothing reached the server: connection refused, DNS failure, TLS handshake failure, a connect timeout.
    NotSent = 1,
    /// The request was sent and no answer came: a read timeout, a reset connection.
    NoResponse = 2,
}

/// The longest method name accepted.
const MAX_METHOD_BYTES: usize = 32;

/// An HTTP method: UTF-8 text, not empty, at most `MAX_METHOD_BYTES`.
unsafe fn method_arg<'a>(ptr: *const c_char, len: usize, what: &str) -> FfiResult<&'a str> {
    // SAFETY: forwarded contract.
    let method = unsafe { text_arg(ptr, len, what, MAX_METHOD_BYTES)? };
    if method.is_empty() {
        return Err(FfiError::new(XG_STATUS_INVALID_ARGUMENT, format!("{what} is empty")));
    }
    Ok(method)
}

/// Decides whether attempt `attempt` + 1 of a request may be sent after this attempt's outcome, and after how long
/// (xero-reference §8): either `response` (a classification from `xg_classify`; `transport_failure` 0) or, when no
/// response came, `response` NULL and `transport_failure` an `xg_transport_failure` code. Outcomes the server did
/// not act on are resent; one it may have carried out is resent for GET, HEAD, OPTIONS and DELETE, or a write that
/// carries an Idempotency-Key, and never for a write without one (`XG_GIVE_UP_UNSAFE_TO_RESEND`: hand the outcome
/// to the caller). Then the backoff of `xg_backoff` applies (`policy` NULL for the defaults). Guards send the same
/// Idempotency-Key on every attempt of one logical call. Thread safety: safe from any number of threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_resend(
    request: *const xg_request,
    response: *const xg_classification,
    transport_failure: u32,
    attempt: u32,
    policy: *const xg_retry_policy,
    out: *mut xg_backoff_decision,
) -> xg_status {
    run("xg_resend", || {
        let defaults = xg_request { struct_size: 0, method: std::ptr::null(), method_len: 0, has_idempotency_key: 0 };
        let request = unsafe { read_sized(request, "request", defaults)? };
        let method = unsafe { method_arg(request.method, request.method_len, "request->method")? };
        let outcome = match (transport_failure, response.is_null()) {
            (0, false) => {
                let c = unsafe { classification_arg(response, "response")? };
                Outcome::Response {
                    retryable: action_of(&c)?.is_retry(),
                    recommended_wait_ms: u64::try_from(c.recommended_wait_ms).ok(),
                    may_have_been_processed: c.may_have_been_processed != 0,
                }
            }
            (0, true) => {
                return Err(FfiError::new(XG_STATUS_NULL_POINTER, "response is NULL and transport_failure is 0"));
            }
            (code, true) if code == TransportFailure::NotSent as u32 => Outcome::NotSent,
            (code, true) if code == TransportFailure::NoResponse as u32 => Outcome::NoResponse,
            (code, true) => {
                return Err(FfiError::new(XG_STATUS_INVALID_ARGUMENT, format!("unknown transport_failure {code}")));
            }
            (_, false) => {
                return Err(FfiError::new(
                    XG_STATUS_INVALID_ARGUMENT,
                    "give either a response or a transport_failure, not both",
                ));
            }
        };
        let has_idempotency_key = flag(request.has_idempotency_key, "request", "has_idempotency_key")?;
        let policy = unsafe { policy_arg(policy)? };
        let out = unsafe { sized_out(out, "out")? };
        let request = Request { method, has_idempotency_key };
        out.write(backoff_to_c(resend(&request, &outcome, attempt, &policy)));
        Ok(())
    })
}

/// Whether a request with this HTTP method (UTF-8, any case) is a write: `*out` 1 for POST, PUT, PATCH and any
/// method the library does not know, 0 for GET, HEAD, OPTIONS and DELETE. `xg_resend` never resends a write
/// the server may have carried out unless it carries an Idempotency-Key, so a guard adds one (the same on every
/// attempt) to each write before sending it. Thread safety: safe from any number of threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_method_is_write(method: *const c_char, method_len: usize, out: *mut u8) -> xg_status {
    run("xg_method_is_write", || {
        let method = unsafe { method_arg(method, method_len, "method")? };
        *unsafe { out_ref(out, "out")? } = u8::from(is_write(method));
        Ok(())
    })
}

fn c_name_or_null(name: Option<&'static std::ffi::CStr>) -> *const c_char {
    name.map_or(std::ptr::null(), std::ffi::CStr::as_ptr)
}

/// The vocabulary word of an `xg_category` code (`"rate_limited"`, …): a static string, or NULL for an unknown
/// code. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_category_name(code: u32) -> *const c_char {
    run_value("xg_category_name", std::ptr::null(), || c_name_or_null(Category::from_code(code).map(Category::c_name)))
}

/// The vocabulary word of an `xg_action` code, or NULL for an unknown code. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_action_name(code: u32) -> *const c_char {
    run_value("xg_action_name", std::ptr::null(), || c_name_or_null(Action::from_code(code).map(Action::c_name)))
}

/// The vocabulary word of an `xg_rate_limit_problem` code, or NULL (also for 0, none). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_rate_limit_problem_name(code: u32) -> *const c_char {
    run_value("xg_rate_limit_problem_name", std::ptr::null(), || {
        c_name_or_null(RateLimitProblem::from_code(code).map(RateLimitProblem::c_name))
    })
}

/// The vocabulary word of an `xg_auth_problem` code, or NULL (also for 0, none). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_auth_problem_name(code: u32) -> *const c_char {
    run_value("xg_auth_problem_name", std::ptr::null(), || {
        c_name_or_null(AuthProblem::from_code(code).map(AuthProblem::c_name))
    })
}

/// The vocabulary word of an `xg_give_up` code (`"unsafe_to_resend"`, …), or NULL (also for 0: not given up).
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_give_up_name(code: u32) -> *const c_char {
    run_value("xg_give_up_name", std::ptr::null(), || c_name_or_null(GiveUp::from_code(code).map(GiveUp::c_name)))
}

/// The vocabulary word of an `xg_failure_policy` code (`"closed"`, `"open"`, `"local"`), or NULL (also for 0: the
/// store decided). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_failure_policy_name(code: u32) -> *const c_char {
    run_value("xg_failure_policy_name", std::ptr::null(), || {
        c_name_or_null(FailurePolicy::from_code(code).map(FailurePolicy::c_name))
    })
}

/// The vocabulary word of an `xg_reason` code, or NULL (also for 0, granted). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_reason_name(code: u32) -> *const c_char {
    run_value("xg_reason_name", std::ptr::null(), || c_name_or_null(Reason::from_code(code).map(Reason::c_name)))
}

/// A limiter's refusal in words, for messages and logs, with the limit named and the wait in units a person reads:
/// "day limit: next call in 11 h 59 min", "concurrency: 5 calls in flight; a slot frees in at most 2 min".
/// `reason` is an `xg_reason` code, `wait_ms` the refusal's wait, `in_flight` the tenant's concurrency limit when
/// known (0: not known; used only for concurrency). The text goes into `buf` as `xg_last_error_message` writes its
/// message: NUL-terminated, `*needed` (may be NULL) the size with the terminator, `XG_STATUS_BUFFER_TOO_SMALL` when
/// it did not fit (as much as fits is copied). Every binding words its waits with this, so they read the same.
/// `XG_STATUS_INVALID_ARGUMENT` for an unknown reason. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_refusal_words(
    reason: u32,
    wait_ms: u64,
    in_flight: u32,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> xg_status {
    let mut copied = XG_STATUS_OK;
    let status = run("xg_refusal_words", || {
        let reason = Reason::from_code(reason)
            .ok_or_else(|| FfiError::new(XG_STATUS_INVALID_ARGUMENT, format!("unknown reason code {reason}")))?;
        let words = refusal_in_words(reason, wait_ms, (in_flight > 0).then_some(in_flight));
        // SAFETY: the caller's contract for buf and needed, as copy_text states it.
        copied = unsafe { copy_text(&words, buf, buf_len, needed) };
        Ok(())
    });
    if status == XG_STATUS_OK { copied } else { status }
}

/// A duration in the units of `xg_refusal_words` ("850 ms", "12.5 s", "1 min 30 s", "11 h 59 min", "3 days 2 h"),
/// written into `buf` the same way, for a binding's messages (a timeout next to a refusal). Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_duration_words(ms: u64, buf: *mut c_char, buf_len: usize, needed: *mut usize) -> xg_status {
    run_value("xg_duration_words", XG_STATUS_PANIC, || {
        // SAFETY: the caller's contract for buf and needed, as copy_text states it.
        unsafe { copy_text(&human_duration(ms), buf, buf_len, needed) }
    })
}
