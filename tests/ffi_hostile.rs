//! Every export called from Rust with hostile arguments: NULL in each pointer, NULL with a non-zero length, bad
//! UTF-8, unknown enum codes, undersized structs and buffers, absurd sizes. Each refusal must return its documented
//! status with a readable message naming the function, write no out-parameter, change no limiter state, and leave
//! no memory behind (a counting allocator checks that repeating a refused call allocates nothing that stays).
//! tests/c/bad_input.c covers the same ground from C.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{CStr, c_char};
use std::ptr;

use xeroguard::ffi::*;

mod common;

struct Counting;
thread_local! {
    // Per thread, so tests running in parallel do not see each other's allocations.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| l.set(l.get() + layout.size() as isize));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get() - layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
}
#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    LIVE.with(Cell::get)
}

/// Runs a refused call three times: the status is the documented one, the message names the function and what
/// was wrong, and after the first call no further memory stays allocated (the last error replaces itself).
#[track_caller]
fn refused(function: &str, expected: xg_status, what: &str, mut call: impl FnMut() -> xg_status) {
    assert_eq!(call(), expected, "{function} ({what}): {}", common::last_error());
    let message = common::last_error();
    assert!(message.starts_with(function), "{function} ({what}): the message should name it: {message:?}");
    assert!(
        message.to_lowercase().contains(&what.to_lowercase()),
        "{function}: message {message:?} should mention {what:?}"
    );
    assert!(message.is_ascii() && message.len() < 400, "readable: {message:?}");
    let before = live_bytes();
    for _ in 0..2 {
        assert_eq!(call(), expected);
    }
    assert_eq!(live_bytes(), before, "{function} ({what}): a refused call left memory allocated");
}

fn size_of<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

fn sentinel_classification() -> xg_classification {
    xg_classification {
        struct_size: size_of::<xg_classification>(),
        status: 777,
        error_number: 4242,
        ..Default::default()
    }
}

#[test]
fn classify_refuses_bad_arguments_without_writing_outputs() {
    let header = |name: &'static [u8], value: &'static [u8]| xg_header {
        name: name.as_ptr().cast(),
        name_len: name.len(),
        value: value.as_ptr().cast(),
        value_len: value.len(),
    };
    let mut out = sentinel_classification();
    let mut json: *mut c_char = ptr::null_mut();
    let response = |headers: &[xg_header]| xg_response {
        status: 429,
        headers: headers.as_ptr(),
        header_count: headers.len(),
        body: ptr::null(),
        body_len: 0,
        now_unix_ms: 1,
    };
    let good = [header(b"Retry-After", b"5")];
    let f = "xg_classify";

    refused(f, XG_STATUS_NULL_POINTER, "response", || unsafe { xg_classify(ptr::null(), &mut out, &mut json) });
    refused(f, XG_STATUS_NULL_POINTER, "NULL", || unsafe {
        xg_classify(&response(&good), ptr::null_mut(), ptr::null_mut())
    });
    let mut r = response(&good);
    r.headers = ptr::null();
    refused(f, XG_STATUS_NULL_POINTER, "headers", || unsafe { xg_classify(&r, &mut out, &mut json) });
    for (bad, what) in [
        (xg_header { name: ptr::null(), ..header(b"Retry-After", b"5") }, "name"),
        (xg_header { value: ptr::null(), ..header(b"Retry-After", b"5") }, "value"),
    ] {
        let headers = [bad];
        refused(f, XG_STATUS_NULL_POINTER, what, || unsafe { xg_classify(&response(&headers), &mut out, &mut json) });
    }
    for (bad, what) in [(header(b"Retry-\xff", b"5"), "name"), (header(b"Retry-After", b"\xc3\x28"), "value")] {
        let headers = [bad];
        refused(f, XG_STATUS_INVALID_UTF8, what, || unsafe { xg_classify(&response(&headers), &mut out, &mut json) });
    }
    let huge_value: &'static [u8] = Box::leak(vec![b'a'; 70_000].into_boxed_slice());
    let headers = [header(b"X-Big", huge_value)];
    refused(f, XG_STATUS_TOO_LARGE, "value", || unsafe { xg_classify(&response(&headers), &mut out, &mut json) });
    let mut r = response(&good);
    r.header_count = XG_MAX_HEADERS + 1;
    refused(f, XG_STATUS_TOO_LARGE, "header_count", || unsafe { xg_classify(&r, &mut out, &mut json) });
    let mut r = response(&good);
    r.body_len = 4;
    refused(f, XG_STATUS_NULL_POINTER, "body", || unsafe { xg_classify(&r, &mut out, &mut json) });
    let body = b"{}";
    r.body = body.as_ptr();
    r.body_len = usize::MAX;
    refused(f, XG_STATUS_INVALID_ARGUMENT, "body", || unsafe { xg_classify(&r, &mut out, &mut json) });
    let mut small = xg_classification { struct_size: 4, ..Default::default() };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe {
        xg_classify(&response(&good), &mut small, ptr::null_mut())
    });

    assert_eq!((out.status, out.error_number), (777, 4242), "a refused call wrote its out struct");
    assert!(json.is_null(), "a refused call wrote json_out");
    assert_eq!((small.status, small.category), (0, 0));

    // Zero lengths with any pointer are empty values, and the good call works afterwards.
    let headers =
        [header(b"Retry-After", b"5"), xg_header { value: ptr::null(), value_len: 0, ..header(b"X-Empty", b"") }];
    assert_eq!(unsafe { xg_classify(&response(&headers), &mut out, &mut json) }, XG_STATUS_OK);
    assert_eq!(out.recommended_wait_ms, 5000);
    assert!(!json.is_null());
    unsafe { xg_string_free(json) };
}

#[test]
fn classify_flat_refuses_bad_arguments_without_writing_outputs() {
    let mut out = sentinel_classification();
    let mut json: *mut c_char = ptr::null_mut();
    let f = "xg_classify_flat";
    let call = |headers: &[u8], out: *mut xg_classification, json: *mut *mut c_char| unsafe {
        xg_classify_flat(429, headers.as_ptr(), headers.len(), ptr::null(), 0, 1, out, json)
    };
    refused(f, XG_STATUS_NULL_POINTER, "headers", || unsafe {
        xg_classify_flat(429, ptr::null(), 3, ptr::null(), 0, 1, &mut out, &mut json)
    });
    refused(f, XG_STATUS_NULL_POINTER, "NULL", || call(b"Retry-After\x005", ptr::null_mut(), ptr::null_mut()));
    refused(f, XG_STATUS_INVALID_UTF8, "headers", || call(b"Retry-After\0\xc3\x28", &mut out, &mut json));
    for odd in [&b"Retry-After"[..], b"Retry-After\x005\0X-A"] {
        refused(f, XG_STATUS_INVALID_ARGUMENT, "odd number", || call(odd, &mut out, &mut json));
    }
    let mut big = b"X-Big\0".to_vec();
    big.resize(big.len() + XG_MAX_HEADER_BYTES + 1, b'a');
    refused(f, XG_STATUS_TOO_LARGE, "value", || call(&big, &mut out, &mut json));
    let many = vec!["X-A\x001"; XG_MAX_HEADERS + 1].join("\0");
    refused(f, XG_STATUS_TOO_LARGE, "headers", || call(many.as_bytes(), &mut out, &mut json));
    refused(f, XG_STATUS_TOO_LARGE, "headers", || unsafe {
        xg_classify_flat(429, b"".as_ptr(), usize::MAX, ptr::null(), 0, 1, &mut out, &mut json)
    });
    refused(f, XG_STATUS_NULL_POINTER, "body", || unsafe {
        xg_classify_flat(400, ptr::null(), 0, ptr::null(), 4, 1, &mut out, &mut json)
    });
    refused(f, XG_STATUS_INVALID_ARGUMENT, "body", || unsafe {
        xg_classify_flat(400, ptr::null(), 0, b"{}".as_ptr(), usize::MAX, 1, &mut out, &mut json)
    });
    let mut small = xg_classification { struct_size: 4, ..Default::default() };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "struct_size", || call(b"Retry-After\x005", &mut small, ptr::null_mut()));
    assert_eq!((out.status, out.error_number), (777, 4242), "a refused call wrote its out struct");
    assert!(json.is_null(), "a refused call wrote json_out");

    // No headers (NULL, 0), an empty name and value ("\0"), and exactly the header limit are accepted.
    assert_eq!(unsafe { xg_classify_flat(503, ptr::null(), 0, ptr::null(), 0, 1, &mut out, ptr::null_mut()) }, 0);
    assert_eq!(call(b"\0", &mut out, ptr::null_mut()), XG_STATUS_OK);
    let most = vec!["X-A\x001"; XG_MAX_HEADERS].join("\0") + "\0Retry-After\x007";
    assert_eq!(call(most.as_bytes(), &mut out, ptr::null_mut()), XG_STATUS_TOO_LARGE);
    let most = vec!["X-A\x001"; XG_MAX_HEADERS - 1].join("\0") + "\0Retry-After\x007";
    assert_eq!(call(most.as_bytes(), &mut out, ptr::null_mut()), XG_STATUS_OK);
    assert_eq!(out.recommended_wait_ms, 7000);
}

#[test]
fn classify_raw_refuses_bad_arguments() {
    let mut out = sentinel_classification();
    let f = "xg_classify_raw";
    refused(f, XG_STATUS_NULL_POINTER, "raw", || unsafe {
        xg_classify_raw(ptr::null(), 10, 0, &mut out, ptr::null_mut())
    });
    let raw = b"HTTP/1.1 503 Service Unavailable\r\n\r\n";
    refused(f, XG_STATUS_NULL_POINTER, "NULL", || unsafe {
        xg_classify_raw(raw.as_ptr(), raw.len(), 0, ptr::null_mut(), ptr::null_mut())
    });
    refused(f, XG_STATUS_INVALID_ARGUMENT, "raw length", || unsafe {
        xg_classify_raw(raw.as_ptr(), usize::MAX, 0, &mut out, ptr::null_mut())
    });
    for garbage in [&b""[..], b"garbage", b"HTTP/1.1 abc\r\n", b"\xff\xfe\x00\x01"] {
        refused(f, XG_STATUS_MALFORMED_RESPONSE, "status line", || unsafe {
            xg_classify_raw(garbage.as_ptr(), garbage.len(), 0, &mut out, ptr::null_mut())
        });
    }
    let many: Vec<u8> = std::iter::once(&b"HTTP/1.1 200 OK\r\n"[..])
        .chain(std::iter::repeat_n(&b"X-A: 1\r\n"[..], XG_MAX_HEADERS + 1))
        .flatten()
        .copied()
        .collect();
    refused(f, XG_STATUS_TOO_LARGE, "header", || unsafe {
        xg_classify_raw(many.as_ptr(), many.len(), 0, &mut out, ptr::null_mut())
    });
    let mut small = xg_classification { struct_size: size_of::<xg_classification>() - 1, ..Default::default() };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe {
        xg_classify_raw(raw.as_ptr(), raw.len(), 0, &mut small, ptr::null_mut())
    });
    assert_eq!((out.status, out.error_number), (777, 4242), "a refused call wrote its out struct");
}

#[test]
fn backoff_and_buffers_refuse_bad_arguments() {
    let mut c = sentinel_classification();
    c.action = 1; // a known action code; the unknown one is tested below
    let mut d = xg_backoff_decision { struct_size: size_of::<xg_backoff_decision>(), ..Default::default() };
    let f = "xg_backoff";
    refused(f, XG_STATUS_NULL_POINTER, "classification", || unsafe { xg_backoff(ptr::null(), 1, ptr::null(), &mut d) });
    refused(f, XG_STATUS_NULL_POINTER, "out", || unsafe { xg_backoff(&c, 1, ptr::null(), ptr::null_mut()) });
    let unknown = xg_classification { action: 77, ..c };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "action", || unsafe { xg_backoff(&unknown, 1, ptr::null(), &mut d) });
    let policy = xg_retry_policy { struct_size: 3, ..xg_retry_policy_default() };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe { xg_backoff(&c, 1, &policy, &mut d) });
    let mut small = xg_backoff_decision { struct_size: 1, ..Default::default() };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe { xg_backoff(&c, 1, ptr::null(), &mut small) });
    let tiny = xg_classification { struct_size: 2, ..c };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe { xg_backoff(&tiny, 1, ptr::null(), &mut d) });
    // A flag is 0 or 1 (a C bool byte of another value would be undefined behaviour): the field is named.
    for (field, bad) in [
        ("classification->retryable", xg_classification { retryable: 2, ..c }),
        ("classification->has_error_number", xg_classification { has_error_number: 255, ..c }),
        ("classification->may_have_been_processed", xg_classification { may_have_been_processed: 9, ..c }),
    ] {
        refused(f, XG_STATUS_INVALID_ARGUMENT, field, || unsafe { xg_backoff(&bad, 1, ptr::null(), &mut d) });
    }
    // A newer header's larger policy: accepted when the fields this library lacks are zero, refused otherwise.
    #[repr(C)]
    struct NewerPolicy {
        policy: xg_retry_policy,
        added: u64,
    }
    let mut newer = NewerPolicy { policy: xg_retry_policy_default(), added: 0 };
    newer.policy.struct_size = size_of::<NewerPolicy>();
    let mut ok = xg_backoff_decision { struct_size: size_of::<xg_backoff_decision>(), ..Default::default() };
    assert_eq!(unsafe { xg_backoff(&c, 1, &raw const newer.policy, &mut ok) }, XG_STATUS_OK);
    newer.added = 1;
    refused(f, XG_STATUS_UNKNOWN_FIELDS, "newer header", || unsafe {
        xg_backoff(&c, 1, &raw const newer.policy, &mut d)
    });
    assert_eq!((d.retry, d.wait_ms), (0, 0), "a refused call wrote its out struct");

    // xg_resend: the request and the outcome are checked like everything else.
    let f = "xg_resend";
    let method = b"POST";
    let request = xg_request {
        struct_size: size_of::<xg_request>(),
        method: method.as_ptr().cast(),
        method_len: method.len(),
        has_idempotency_key: 0,
    };
    refused(f, XG_STATUS_NULL_POINTER, "request", || unsafe { xg_resend(ptr::null(), &c, 0, 1, ptr::null(), &mut d) });
    refused(f, XG_STATUS_NULL_POINTER, "out", || unsafe {
        xg_resend(&request, &c, 0, 1, ptr::null(), ptr::null_mut())
    });
    refused(f, XG_STATUS_NULL_POINTER, "response", || unsafe {
        xg_resend(&request, ptr::null(), 0, 1, ptr::null(), &mut d)
    });
    refused(f, XG_STATUS_INVALID_ARGUMENT, "transport_failure", || unsafe {
        xg_resend(&request, ptr::null(), 9, 1, ptr::null(), &mut d)
    });
    refused(f, XG_STATUS_INVALID_ARGUMENT, "not both", || unsafe {
        xg_resend(&request, &c, 1, 1, ptr::null(), &mut d)
    });
    let bad = b"PO\xffST";
    let bad_method = xg_request { method: bad.as_ptr().cast(), method_len: bad.len(), ..request };
    refused(f, XG_STATUS_INVALID_UTF8, "method", || unsafe { xg_resend(&bad_method, &c, 0, 1, ptr::null(), &mut d) });
    let null_method = xg_request { method: ptr::null(), method_len: 4, ..request };
    refused(f, XG_STATUS_NULL_POINTER, "method", || unsafe { xg_resend(&null_method, &c, 0, 1, ptr::null(), &mut d) });
    let long = [b'A'; 33];
    let long_method = xg_request { method: long.as_ptr().cast(), method_len: long.len(), ..request };
    refused(f, XG_STATUS_TOO_LARGE, "method", || unsafe { xg_resend(&long_method, &c, 0, 1, ptr::null(), &mut d) });
    let yes = xg_request { has_idempotency_key: 2, ..request };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "request->has_idempotency_key", || unsafe {
        xg_resend(&yes, &c, 0, 1, ptr::null(), &mut d)
    });
    let small_request = xg_request { struct_size: 4, ..request };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe {
        xg_resend(&small_request, &c, 0, 1, ptr::null(), &mut d)
    });
    assert_eq!((d.retry, d.wait_ms), (0, 0), "a refused call wrote its out struct");

    // xg_method_is_write: the method is checked as xg_resend checks it; the answer is the table's.
    let f = "xg_method_is_write";
    let mut write = 7u8;
    refused(f, XG_STATUS_NULL_POINTER, "method", || unsafe { xg_method_is_write(ptr::null(), 3, &mut write) });
    refused(f, XG_STATUS_INVALID_UTF8, "method", || unsafe {
        xg_method_is_write(bad.as_ptr().cast(), bad.len(), &mut write)
    });
    refused(f, XG_STATUS_TOO_LARGE, "method", || unsafe {
        xg_method_is_write(long.as_ptr().cast(), long.len(), &mut write)
    });
    refused(f, XG_STATUS_INVALID_ARGUMENT, "empty", || unsafe {
        xg_method_is_write(b"".as_ptr().cast(), 0, &mut write)
    });
    refused(f, XG_STATUS_NULL_POINTER, "out", || unsafe {
        xg_method_is_write(method.as_ptr().cast(), method.len(), ptr::null_mut())
    });
    assert_eq!(write, 7, "a refused call wrote its output");
    let writes = [("POST", true), ("put", true), ("PATCH", true), ("PURGE", true)];
    let reads = [("GET", false), ("head", false), ("OPTIONS", false), ("Delete", false)];
    for (method, expected) in writes.into_iter().chain(reads) {
        assert_eq!(unsafe { xg_method_is_write(method.as_ptr().cast(), method.len(), &mut write) }, XG_STATUS_OK);
        assert_eq!(write, u8::from(expected), "{method}");
    }

    // xg_body_bytes_to_classify: a content type with a length and no pointer, or nowhere to write.
    let f = "xg_body_bytes_to_classify";
    let mut bytes = 7u64;
    refused(f, XG_STATUS_NULL_POINTER, "content_type", || unsafe {
        xg_body_bytes_to_classify(200, ptr::null(), 4, &mut bytes)
    });
    refused(f, XG_STATUS_NULL_POINTER, "out", || unsafe {
        xg_body_bytes_to_classify(200, ptr::null(), 0, ptr::null_mut())
    });
    assert_eq!(bytes, 7, "a refused call wrote its output");

    // The error buffer itself: a size query, a short buffer (truncated, terminated), NULL with a length.
    unsafe { xg_backoff(ptr::null(), 1, ptr::null(), &mut d) };
    let mut needed = 0usize;
    assert_eq!(unsafe { xg_last_error_message(ptr::null_mut(), 0, &mut needed) }, XG_STATUS_BUFFER_TOO_SMALL);
    assert_eq!(needed, common::last_error().len() + 1);
    let mut short = [0x7f as c_char; 5];
    assert_eq!(
        unsafe { xg_last_error_message(short.as_mut_ptr(), short.len(), ptr::null_mut()) },
        XG_STATUS_BUFFER_TOO_SMALL
    );
    assert_eq!(unsafe { CStr::from_ptr(short.as_ptr()) }.to_bytes(), &common::last_error().as_bytes()[..4]);
    assert_eq!(unsafe { xg_last_error_message(ptr::null_mut(), 10, ptr::null_mut()) }, XG_STATUS_NULL_POINTER);

    // Names of unknown codes are NULL (or "unknown_status"), never a crash.
    for code in [0u32, 9999, u32::MAX] {
        assert!(xg_action_name(code).is_null() || code == 0);
        assert!(xg_rate_limit_problem_name(code).is_null());
        assert!(xg_auth_problem_name(code).is_null());
        assert!(xg_reason_name(code).is_null());
    }
    assert!(xg_category_name(u32::MAX).is_null());
    for status in [-1, 50, 98, 100, i32::MIN, i32::MAX] {
        assert_eq!(unsafe { CStr::from_ptr(xg_status_name(status)) }.to_str().unwrap(), "unknown_status");
    }
    unsafe { xg_string_free(ptr::null_mut()) };
    unsafe { xg_limiter_free(ptr::null_mut()) };
}

struct Handle(*mut xg_limiter);
impl Drop for Handle {
    fn drop(&mut self) {
        unsafe { xg_limiter_free(self.0) };
    }
}

#[test]
fn words_are_written_like_the_last_error_message() {
    let f = "xg_refusal_words";
    let mut buf = [0x55 as c_char; 64];
    let mut needed = 0usize;
    refused(f, XG_STATUS_INVALID_ARGUMENT, "reason code 99", || unsafe {
        xg_refusal_words(99, 1, 0, buf.as_mut_ptr(), buf.len(), &mut needed)
    });
    assert_eq!(buf[0], 0x55, "a refused call wrote its buffer");
    let text = |buf: &[c_char]| unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned();
    let day = 2; // xg_reason day
    let wait = 43_199_942;
    assert_eq!(unsafe { xg_refusal_words(day, wait, 0, buf.as_mut_ptr(), buf.len(), &mut needed) }, XG_STATUS_OK);
    assert_eq!(text(&buf), "day limit: next call in 11 h 59 min");
    assert_eq!(needed, text(&buf).len() + 1);
    let mut small = [0x55 as c_char; 8];
    let status = unsafe { xg_refusal_words(day, wait, 0, small.as_mut_ptr(), small.len(), &mut needed) };
    assert_eq!((status, text(&small).as_str(), needed), (XG_STATUS_BUFFER_TOO_SMALL, "day lim", 36), "cut, sized");
    let query = unsafe { xg_refusal_words(day, wait, 0, ptr::null_mut(), 0, &mut needed) };
    assert_eq!((query, needed), (XG_STATUS_BUFFER_TOO_SMALL, 36), "the size query");
    let no_buffer = unsafe { xg_refusal_words(day, wait, 0, ptr::null_mut(), 8, ptr::null_mut()) };
    assert_eq!(no_buffer, XG_STATUS_NULL_POINTER);
    let concurrency = 4;
    assert_eq!(unsafe { xg_refusal_words(concurrency, 120_000, 5, buf.as_mut_ptr(), buf.len(), ptr::null_mut()) }, 0);
    assert_eq!(text(&buf), "concurrency: 5 calls in flight; a slot frees in at most 2 min");

    assert_eq!(unsafe { xg_duration_words(90_000, buf.as_mut_ptr(), buf.len(), &mut needed) }, XG_STATUS_OK);
    assert_eq!((text(&buf).as_str(), needed), ("1 min 30 s", 11));
    assert_eq!(unsafe { xg_duration_words(90_000, ptr::null_mut(), 3, ptr::null_mut()) }, XG_STATUS_NULL_POINTER);
}

fn new_limiter(limits: Option<xg_limits>, clock: u32) -> Handle {
    let mut out = ptr::null_mut();
    let limits_ptr = limits.as_ref().map_or(ptr::null(), |l| l as *const xg_limits);
    assert_eq!(unsafe { xg_limiter_new(limits_ptr, clock, &mut out) }, XG_STATUS_OK, "{}", common::last_error());
    Handle(out)
}

fn zero_stats() -> xg_stats {
    // SAFETY: xg_stats is plain integers and arrays of them: all zeros is a valid value.
    unsafe { std::mem::zeroed() }
}

/// The statistics, as comparable text.
fn stats(l: &Handle) -> String {
    let mut out = xg_stats { struct_size: size_of::<xg_stats>(), ..zero_stats() };
    assert_eq!(unsafe { xg_limiter_stats(l.0, &mut out) }, XG_STATUS_OK, "{}", common::last_error());
    format!("{out:?}")
}

fn snapshot(l: &Handle, tenant: &[u8]) -> String {
    let mut json = ptr::null_mut();
    assert_eq!(unsafe { xg_limiter_snapshot_json(l.0, tenant.as_ptr().cast(), tenant.len(), &mut json) }, XG_STATUS_OK);
    let text = unsafe { CStr::from_ptr(json) }.to_str().unwrap().to_owned();
    unsafe { xg_string_free(json) };
    text
}

#[test]
fn limiter_new_refuses_bad_arguments() {
    let f = "xg_limiter_new";
    let mut out: *mut xg_limiter = ptr::null_mut();
    let exact = xg_limits_exact();
    refused(f, XG_STATUS_NULL_POINTER, "out", || unsafe { xg_limiter_new(&exact, XG_CLOCK_MANUAL, ptr::null_mut()) });
    refused(f, XG_STATUS_INVALID_ARGUMENT, "clock", || unsafe { xg_limiter_new(&exact, 7, &mut out) });
    let small = xg_limits { struct_size: 0, ..exact };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe {
        xg_limiter_new(&small, XG_CLOCK_MANUAL, &mut out)
    });
    let mut no_window = exact;
    no_window.tenant_minute.window_ms = 0;
    refused(f, XG_STATUS_INVALID_ARGUMENT, "limits", || unsafe {
        xg_limiter_new(&no_window, XG_CLOCK_MANUAL, &mut out)
    });
    let never_expires = xg_limits { permit_timeout_ms: 0, ..exact };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "limits", || unsafe {
        xg_limiter_new(&never_expires, XG_CLOCK_MANUAL, &mut out)
    });
    assert!(out.is_null(), "no handle on failure");
}

#[test]
fn shared_limiter_creation_refuses_bad_options() {
    let f = "xg_limiter_new_redis";
    let url = b"redis://127.0.0.1:1";
    let prefix = b"app";
    let good = xg_redis_options {
        url: url.as_ptr().cast(),
        url_len: url.len(),
        key_prefix: prefix.as_ptr().cast(),
        key_prefix_len: prefix.len(),
        ..xg_redis_options_default()
    };
    let mut out: *mut xg_limiter = ptr::null_mut();
    let op = &mut out as *mut *mut xg_limiter;
    let new = |o: &xg_redis_options, out: *mut *mut xg_limiter| unsafe { xg_limiter_new_redis(ptr::null(), o, 0, out) };
    refused(f, XG_STATUS_NULL_POINTER, "options", || unsafe { xg_limiter_new_redis(ptr::null(), ptr::null(), 0, op) });
    refused(f, XG_STATUS_NULL_POINTER, "out", || new(&good, ptr::null_mut()));
    for (bad, status, what) in [
        (xg_redis_options { url_len: 0, ..good }, XG_STATUS_INVALID_ARGUMENT, "url"),
        (xg_redis_options { key_prefix: ptr::null(), ..good }, XG_STATUS_NULL_POINTER, "key_prefix"),
        (
            xg_redis_options { key_prefix: b"a{b}".as_ptr().cast(), key_prefix_len: 4, ..good },
            XG_STATUS_INVALID_ARGUMENT,
            "prefix",
        ),
        (xg_redis_options { key_prefix_len: 129, ..good }, XG_STATUS_TOO_LARGE, "key_prefix"),
        (xg_redis_options { deadline_ms: 0, ..good }, XG_STATUS_INVALID_ARGUMENT, "deadline_ms"),
        (xg_redis_options { deadline_ms: 10_001, ..good }, XG_STATUS_INVALID_ARGUMENT, "deadline_ms"),
        (xg_redis_options { on_store_error: 9, ..good }, XG_STATUS_INVALID_ARGUMENT, "on_store_error"),
        (xg_redis_options { workers: 0, ..good }, XG_STATUS_INVALID_ARGUMENT, "workers"),
        (xg_redis_options { replace_limits: 3, ..good }, XG_STATUS_INVALID_ARGUMENT, "options->replace_limits is 3"),
        (xg_redis_options { struct_size: 8, ..good }, XG_STATUS_INVALID_ARGUMENT, "struct_size"),
        (xg_redis_options { url: b"not a url".as_ptr().cast(), url_len: 9, ..good }, XG_STATUS_INVALID_ARGUMENT, "url"),
    ] {
        refused(f, status, what, || new(&bad, op));
    }
    refused(f, XG_STATUS_INVALID_ARGUMENT, "clock", || unsafe { xg_limiter_new_redis(ptr::null(), &good, 7, op) });
    let f = "xg_limiter_inspect_redis";
    refused(f, XG_STATUS_NULL_POINTER, "options", || unsafe { xg_limiter_inspect_redis(ptr::null(), 0, op) });
    refused(f, XG_STATUS_NULL_POINTER, "out", || unsafe { xg_limiter_inspect_redis(&good, 0, ptr::null_mut()) });
    refused(f, XG_STATUS_INVALID_ARGUMENT, "clock", || unsafe { xg_limiter_inspect_redis(&good, 7, op) });
    let no_prefix = xg_redis_options { key_prefix_len: 0, ..good };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "key_prefix", || unsafe { xg_limiter_inspect_redis(&no_prefix, 0, op) });
    assert!(out.is_null(), "no handle on failure");
}

#[test]
fn limits_of_a_limiter_refuse_bad_pointers() {
    let l = new_limiter(Some(xg_limits_exact()), XG_CLOCK_MANUAL);
    let f = "xg_limiter_limits";
    refused(f, XG_STATUS_NULL_POINTER, "limiter", || unsafe {
        xg_limiter_limits(ptr::null(), &mut xg_limits_default())
    });
    refused(f, XG_STATUS_NULL_POINTER, "out", || unsafe { xg_limiter_limits(l.0, ptr::null_mut()) });
    let mut out = xg_limits { struct_size: 8, ..xg_limits_default() };
    refused(f, XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe { xg_limiter_limits(l.0, &mut out) });
    let mut out = xg_limits_default();
    assert_eq!(unsafe { xg_limiter_limits(l.0, &mut out) }, XG_STATUS_OK);
    assert_eq!(out.tenant_minute.margin_ms, 0, "the limiter's own limits (exact), not the defaults");
}

#[test]
fn limiter_calls_refuse_bad_arguments_and_change_nothing() {
    let l = new_limiter(Some(xg_limits_exact()), XG_CLOCK_MANUAL);
    let mono = new_limiter(None, XG_CLOCK_MONOTONIC);
    let t = b"tenant-1";
    let (tp, tl) = (t.as_ptr().cast::<c_char>(), t.len());
    // Some history, so "nothing changed" compares a state that has something in it.
    assert_eq!(unsafe { xg_limiter_set_now_ms(l.0, 1_000_000) }, XG_STATUS_OK);
    for _ in 0..3 {
        assert_eq!(unsafe { xg_limiter_record(l.0, tp, tl) }, XG_STATUS_OK);
    }
    let mut held = xg_decision { struct_size: size_of::<xg_decision>(), ..Default::default() };
    assert_eq!(unsafe { xg_limiter_acquire(l.0, tp, tl, &mut held) }, XG_STATUS_OK);
    assert_eq!(held.granted, 1);
    let before = snapshot(&l, t);
    let stats_before = stats(&l);

    let bad_utf8 = b"tenant-\xff";
    let long: Vec<u8> = vec![b'a'; 257];
    let mut d = xg_decision { struct_size: size_of::<xg_decision>(), permit: 99, wait_ms: 99, ..Default::default() };
    let mut r = xg_reservation { struct_size: size_of::<xg_reservation>(), id: 99, ..Default::default() };
    let mut json: *mut c_char = ptr::null_mut();

    // Every export taking (limiter, tenant, tenant_len, ...): NULL limiter, NULL tenant with a length, bad UTF-8,
    // a tenant id over the cap.
    type TenantCall<'a> = Box<dyn FnMut(*const xg_limiter, *const c_char, usize) -> xg_status + 'a>;
    let classification = xg_classification {
        struct_size: size_of::<xg_classification>(),
        status: 429,
        category: 6,
        action: 1,
        ..Default::default()
    };
    let raw = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nX-Rate-Limit-Problem: minute\r\n\r\n";
    let tenant_limits =
        xg_tenant_limits { struct_size: size_of::<xg_tenant_limits>(), minute_limit: 1, day_limit: 1, concurrency: 1 };
    let mut step = xg_wait_step { struct_size: size_of::<xg_wait_step>(), permit: 99, ..Default::default() };
    let (dp, rp, jp) = (&mut d as *mut xg_decision, &mut r as *mut xg_reservation, &mut json as *mut *mut c_char);
    let sp = &mut step as *mut xg_wait_step;
    let calls: Vec<(&str, TenantCall)> = vec![
        ("xg_limiter_acquire", Box::new(|l, t, n| unsafe { xg_limiter_acquire(l, t, n, dp) })),
        ("xg_limiter_acquire_wait", Box::new(|l, t, n| unsafe { xg_limiter_acquire_wait(l, t, n, 0, dp) })),
        ("xg_limiter_acquire_until", Box::new(|l, t, n| unsafe { xg_limiter_acquire_until(l, t, n, 0, 0, sp) })),
        ("xg_limiter_peek", Box::new(|l, t, n| unsafe { xg_limiter_peek(l, t, n, dp) })),
        ("xg_limiter_record", Box::new(|l, t, n| unsafe { xg_limiter_record(l, t, n) })),
        ("xg_limiter_reserve", Box::new(|l, t, n| unsafe { xg_limiter_reserve(l, t, n, rp) })),
        ("xg_limiter_observe", Box::new(|l, t, n| unsafe { xg_limiter_observe(l, t, n, &classification) })),
        (
            "xg_limiter_observe_raw",
            Box::new(|l, t, n| unsafe { xg_limiter_observe_raw(l, t, n, raw.as_ptr(), raw.len()) }),
        ),
        ("xg_limiter_snapshot_json", Box::new(|l, t, n| unsafe { xg_limiter_snapshot_json(l, t, n, jp) })),
        (
            "xg_limiter_set_tenant_limits",
            Box::new(|l, t, n| unsafe { xg_limiter_set_tenant_limits(l, t, n, &tenant_limits) }),
        ),
    ];
    for (f, mut call) in calls {
        refused(f, XG_STATUS_NULL_POINTER, "limiter", || call(ptr::null(), tp, tl));
        refused(f, XG_STATUS_NULL_POINTER, "tenant", || call(l.0, ptr::null(), 5));
        refused(f, XG_STATUS_INVALID_UTF8, "tenant", || call(l.0, bad_utf8.as_ptr().cast(), bad_utf8.len()));
        refused(f, XG_STATUS_TOO_LARGE, "tenant", || call(l.0, long.as_ptr().cast(), long.len()));
    }

    // Out-parameters: NULL and undersized.
    refused("xg_limiter_acquire", XG_STATUS_NULL_POINTER, "out", || unsafe {
        xg_limiter_acquire(l.0, tp, tl, ptr::null_mut())
    });
    refused("xg_limiter_peek", XG_STATUS_NULL_POINTER, "out", || unsafe {
        xg_limiter_peek(l.0, tp, tl, ptr::null_mut())
    });
    refused("xg_limiter_acquire_wait", XG_STATUS_NULL_POINTER, "out", || unsafe {
        xg_limiter_acquire_wait(l.0, tp, tl, 5, ptr::null_mut())
    });
    refused("xg_limiter_reserve", XG_STATUS_NULL_POINTER, "out", || unsafe {
        xg_limiter_reserve(l.0, tp, tl, ptr::null_mut())
    });
    refused("xg_limiter_snapshot_json", XG_STATUS_NULL_POINTER, "json_out", || unsafe {
        xg_limiter_snapshot_json(l.0, tp, tl, ptr::null_mut())
    });
    refused("xg_limiter_now_ms", XG_STATUS_NULL_POINTER, "out_ms", || unsafe {
        xg_limiter_now_ms(l.0, ptr::null_mut())
    });
    refused("xg_limiter_deadline_ms", XG_STATUS_NULL_POINTER, "deadline_ms", || unsafe {
        xg_limiter_deadline_ms(l.0, 5, ptr::null_mut())
    });
    refused("xg_limiter_deadline_ms", XG_STATUS_NULL_POINTER, "limiter", || unsafe {
        xg_limiter_deadline_ms(ptr::null(), 5, &mut 0)
    });
    refused("xg_limiter_acquire_until", XG_STATUS_NULL_POINTER, "out", || unsafe {
        xg_limiter_acquire_until(l.0, tp, tl, 0, 0, ptr::null_mut())
    });
    let mut small_step = xg_wait_step { struct_size: 3, ..Default::default() };
    refused("xg_limiter_acquire_until", XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe {
        xg_limiter_acquire_until(l.0, tp, tl, 0, 0, &mut small_step)
    });
    let mut not_a_flag = xg_wait_step { struct_size: size_of::<xg_wait_step>(), waiting: 2, ..Default::default() };
    refused("xg_limiter_acquire_until", XG_STATUS_INVALID_ARGUMENT, "out->waiting", || unsafe {
        xg_limiter_acquire_until(l.0, tp, tl, 0, 0, &mut not_a_flag)
    });
    let mut st = xg_stats { struct_size: size_of::<xg_stats>(), granted: 99, ..zero_stats() };
    refused("xg_limiter_stats", XG_STATUS_NULL_POINTER, "limiter", || unsafe {
        xg_limiter_stats(ptr::null(), &mut st)
    });
    refused("xg_limiter_stats", XG_STATUS_NULL_POINTER, "out", || unsafe { xg_limiter_stats(l.0, ptr::null_mut()) });
    for size in [0, 3, XG_MAX_STRUCT_SIZE + 1, u32::MAX] {
        let mut bad = xg_stats { struct_size: size, granted: 99, ..zero_stats() };
        refused("xg_limiter_stats", XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe {
            xg_limiter_stats(l.0, &mut bad)
        });
        assert_eq!(bad.granted, 99, "nothing written");
    }
    assert_eq!(st.granted, 99, "nothing written");
    refused("xg_limiter_interrupt", XG_STATUS_NULL_POINTER, "limiter", || unsafe { xg_limiter_interrupt(ptr::null()) });
    let mut small_d = xg_decision { struct_size: 1, ..Default::default() };
    refused("xg_limiter_acquire", XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe {
        xg_limiter_acquire(l.0, tp, tl, &mut small_d)
    });
    refused("xg_limiter_acquire_wait", XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe {
        xg_limiter_acquire_wait(l.0, tp, tl, 5, &mut small_d)
    });
    let mut small_r = xg_reservation { struct_size: 0, ..Default::default() };
    refused("xg_limiter_reserve", XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe {
        xg_limiter_reserve(l.0, tp, tl, &mut small_r)
    });
    let small_limits = xg_tenant_limits { struct_size: 2, ..tenant_limits };
    refused("xg_limiter_set_tenant_limits", XG_STATUS_INVALID_ARGUMENT, "struct_size", || unsafe {
        xg_limiter_set_tenant_limits(l.0, tp, tl, &small_limits)
    });
    refused("xg_limiter_set_tenant_limits", XG_STATUS_INVALID_ARGUMENT, "tenant", || unsafe {
        xg_limiter_set_tenant_limits(l.0, ptr::null(), 0, &tenant_limits)
    });

    // Classifications with unknown enum codes or a short struct, raw responses that are not HTTP.
    let f = "xg_limiter_observe";
    refused(f, XG_STATUS_NULL_POINTER, "classification", || unsafe { xg_limiter_observe(l.0, tp, tl, ptr::null()) });
    for (bad, what) in [
        (xg_classification { category: 999, ..classification }, "category"),
        (xg_classification { rate_limit_problem: 42, ..classification }, "rate_limit_problem"),
        (xg_classification { struct_size: 2, ..classification }, "struct_size"),
    ] {
        refused(f, XG_STATUS_INVALID_ARGUMENT, what, || unsafe { xg_limiter_observe(l.0, tp, tl, &bad) });
    }
    refused("xg_limiter_observe_raw", XG_STATUS_NULL_POINTER, "raw", || unsafe {
        xg_limiter_observe_raw(l.0, tp, tl, ptr::null(), 9)
    });
    refused("xg_limiter_observe_raw", XG_STATUS_MALFORMED_RESPONSE, "status line", || unsafe {
        xg_limiter_observe_raw(l.0, tp, tl, b"nope".as_ptr(), 4)
    });
    refused("xg_limiter_observe_raw", XG_STATUS_INVALID_ARGUMENT, "raw length", || unsafe {
        xg_limiter_observe_raw(l.0, tp, tl, raw.as_ptr(), usize::MAX)
    });

    // Handles and ids that are not ours; clocks that cannot move that way.
    refused("xg_limiter_release", XG_STATUS_UNKNOWN_PERMIT, "permit", || unsafe { xg_limiter_release(l.0, 12345) });
    refused("xg_limiter_release", XG_STATUS_NULL_POINTER, "limiter", || unsafe {
        xg_limiter_release(ptr::null(), held.permit)
    });
    refused("xg_limiter_cancel", XG_STATUS_UNKNOWN_RESERVATION, "reservation", || unsafe {
        xg_limiter_cancel(l.0, u64::MAX)
    });
    refused("xg_limiter_cancel", XG_STATUS_NULL_POINTER, "limiter", || unsafe { xg_limiter_cancel(ptr::null(), 1) });
    refused("xg_limiter_advance_ms", XG_STATUS_WRONG_CLOCK, "manual", || unsafe { xg_limiter_advance_ms(mono.0, 10) });
    refused("xg_limiter_set_now_ms", XG_STATUS_WRONG_CLOCK, "manual", || unsafe { xg_limiter_set_now_ms(mono.0, 10) });
    refused("xg_limiter_set_now_ms", XG_STATUS_INVALID_ARGUMENT, "backwards", || unsafe {
        xg_limiter_set_now_ms(l.0, 5)
    });
    refused("xg_limiter_advance_ms", XG_STATUS_NULL_POINTER, "limiter", || unsafe {
        xg_limiter_advance_ms(ptr::null(), 1)
    });
    refused("xg_limiter_now_ms", XG_STATUS_NULL_POINTER, "limiter", || unsafe {
        xg_limiter_now_ms(ptr::null(), &mut 0)
    });

    // Nothing above changed the limiter or wrote an out-parameter.
    assert_eq!(snapshot(&l, t), before, "a refused call changed the tenant's state");
    assert_eq!(stats(&l), stats_before, "a refused call was counted");
    assert_eq!((d.permit, d.wait_ms, r.id, step.permit), (99, 99, 99, 99), "a refused call wrote an out-parameter");
    assert!(json.is_null());
    assert_eq!(unsafe { xg_limiter_release(l.0, held.permit) }, XG_STATUS_OK, "the permit survived every refusal");
}

#[test]
fn stats_and_wait_steps_grow_like_every_struct() {
    let l = new_limiter(Some(xg_limits_exact()), XG_CLOCK_MANUAL);
    let t = b"tenant-1";
    let (tp, tl) = (t.as_ptr().cast::<c_char>(), t.len());
    for _ in 0..60 {
        assert_eq!(unsafe { xg_limiter_record(l.0, tp, tl) }, XG_STATUS_OK);
    }

    // A newer header's xg_stats (a field appended): filled as far as this library knows, struct_size says so, and
    // its own field is left alone.
    #[repr(C)]
    struct NewerStats {
        stats: xg_stats,
        appended: u64,
    }
    let mut newer =
        NewerStats { stats: xg_stats { struct_size: size_of::<NewerStats>(), ..zero_stats() }, appended: 7 };
    assert_eq!(unsafe { xg_limiter_stats(l.0, &mut newer.stats) }, XG_STATUS_OK);
    assert_eq!((newer.stats.struct_size, newer.appended), (size_of::<xg_stats>(), 7));
    assert_eq!(newer.stats.wait_bucket_le_ms, [10, 100, 1_000, 10_000, 65_000, 600_000, u64::MAX]);

    // ABI 2's xg_wait_step (48 bytes, ending after `fallback`): written only as far as it goes, and its steps are
    // decisions, not a wait.
    #[repr(C, align(8))]
    struct Abi2Step([u8; 64]);
    let mut old = Abi2Step([0xAA; 64]);
    old.0[..4].copy_from_slice(&48u32.to_ne_bytes());
    let old_step = (&raw mut old).cast::<xg_wait_step>();
    for _ in 0..2 {
        assert_eq!(unsafe { xg_limiter_acquire_until(l.0, tp, tl, XG_NO_DEADLINE, 0, old_step) }, XG_STATUS_OK);
        assert_eq!(&old.0[..4], &48u32.to_ne_bytes(), "struct_size: the layout filled");
        assert_eq!(&old.0[44..], &[0xAA; 20], "nothing written past `fallback`");
    }
    let mut st = xg_stats { struct_size: size_of::<xg_stats>(), ..zero_stats() };
    assert_eq!(unsafe { xg_limiter_stats(l.0, &mut st) }, XG_STATUS_OK);
    assert_eq!((st.refused[xeroguard::Reason::Minute.code() as usize], st.waits_started), (2, 0));

    // This header's: the wait is kept in the struct from step to step, and counted once.
    let mut step = xg_wait_step { struct_size: size_of::<xg_wait_step>(), ..Default::default() };
    assert_eq!(unsafe { xg_limiter_acquire_until(l.0, tp, tl, XG_NO_DEADLINE, 0, &mut step) }, XG_STATUS_OK);
    assert_eq!((step.outcome, step.waiting, step.wait_started_ms), (WaitOutcome::AskAgain as u32, 1, 0));
    assert_eq!(unsafe { xg_limiter_advance_ms(l.0, 60_000) }, XG_STATUS_OK);
    assert_eq!(unsafe { xg_limiter_acquire_until(l.0, tp, tl, XG_NO_DEADLINE, 0, &mut step) }, XG_STATUS_OK);
    assert_eq!((step.outcome, step.waiting, step.waited_ms), (WaitOutcome::Granted as u32, 0, 60_000));
    assert_eq!(unsafe { xg_limiter_stats(l.0, &mut st) }, XG_STATUS_OK);
    assert_eq!(
        (st.granted, st.refused[xeroguard::Reason::Minute.code() as usize], st.waits_started, st.waits_granted),
        (1, 3, 1, 1)
    );
    assert_eq!((st.wait_ms_total, st.wait_buckets[4]), (60_000, 1));
    assert_eq!(unsafe { xg_limiter_release(l.0, step.permit) }, XG_STATUS_OK);
}

#[test]
fn store_failure_kinds_have_names() {
    let name = |code| {
        let p = xg_store_failure_kind_name(code);
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap())
    };
    let words = [None, Some("timeout"), Some("connection"), Some("refused"), Some("protocol"), None];
    for (code, word) in words.into_iter().enumerate() {
        assert_eq!(name(code as u32), word, "code {code}");
    }
    assert_eq!(name(u32::MAX), None);
}
