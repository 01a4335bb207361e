//! Status codes, the thread-local last error, the panic boundary, and checked conversions of C arguments.

use std::cell::RefCell;
use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The result of every fallible function. `XG_STATUS_OK` is 0; codes are never reused.
pub type xg_status = i32;

/// Success.
pub const XG_STATUS_OK: xg_status = 0;
/// A required pointer was NULL (or a NULL data pointer came with a non-zero length).
pub const XG_STATUS_NULL_POINTER: xg_status = 1;
/// Text that must be UTF-8 (a tenant id, a header name or value) was not.
pub const XG_STATUS_INVALID_UTF8: xg_status = 2;
/// An argument was out of range: an unknown enum code, a too-small `struct_size`, a bad limit.
pub const XG_STATUS_INVALID_ARGUMENT: xg_status = 3;
/// A raw HTTP response had no parsable status line.
pub const XG_STATUS_MALFORMED_RESPONSE: xg_status = 4;
/// The caller's buffer was too small; the needed size was reported.
pub const XG_STATUS_BUFFER_TOO_SMALL: xg_status = 5;
/// An input exceeded a documented cap (header count, tenant id length).
pub const XG_STATUS_TOO_LARGE: xg_status = 6;
/// The permit is not held: never granted, already released, or expired.
pub const XG_STATUS_UNKNOWN_PERMIT: xg_status = 7;
/// The reservation is not pending: never made, already cancelled, or its time has come.
pub const XG_STATUS_UNKNOWN_RESERVATION: xg_status = 8;
/// The limiter tracks `max_tenants` tenants and none is idle.
pub const XG_STATUS_TOO_MANY_TENANTS: xg_status = 9;
/// The operation needs the manual clock (`xg_limiter_advance_ms`, `xg_limiter_set_now_ms`).
pub const XG_STATUS_WRONG_CLOCK: xg_status = 10;
/// The wait was ended by `xg_limiter_interrupt` (the limiter is shutting down).
pub const XG_STATUS_INTERRUPTED: xg_status = 11;
/// A reservation's slot lies beyond the booking horizon (`XG_MAX_BOOKING_AHEAD_MS`).
pub const XG_STATUS_BOOKING_TOO_FAR: xg_status = 12;
/// The shared store (Redis) could not be reached within the deadline, and the failure policy did not decide instead.
pub const XG_STATUS_STORE_UNAVAILABLE: xg_status = 13;
/// The shared store answered with an error (e.g. its key prefix runs on another clock); the message has it.
pub const XG_STATUS_STORE_ERROR: xg_status = 14;
/// A panic inside the library was caught at the boundary. The library remains usable.
pub const XG_STATUS_PANIC: xg_status = 99;

/// An error on its way to the caller: a status and a readable message.
pub(crate) struct FfiError {
    pub status: xg_status,
    pub message: String,
}

impl FfiError {
    pub fn new(status: xg_status, message: impl Into<String>) -> Self {
        FfiError { status, message: message.into() }
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_last_error(message: String) {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = message);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(feature = "fault-injection")]
thread_local! {
    static PANIC_NEXT_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Test-only (feature `fault-injection`): the next fallible export called on this thread panics inside the
/// boundary, as a bug would.
#[cfg(feature = "fault-injection")]
pub fn inject_panic_in_next_call() {
    PANIC_NEXT_CALL.with(|flag| flag.set(true));
}

/// The panic boundary every fallible export runs in.
pub(crate) fn run(function: &'static str, body: impl FnOnce() -> FfiResult) -> xg_status {
    let body = || {
        #[cfg(feature = "fault-injection")]
        if PANIC_NEXT_CALL.with(|flag| flag.replace(false)) {
            panic!("injected fault in {function}");
        }
        body()
    };
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => XG_STATUS_OK,
        Ok(Err(error)) => {
            set_last_error(format!("{function}: {}", error.message));
            error.status
        }
        Err(payload) => {
            set_last_error(format!("{function}: internal panic: {}", panic_message(&*payload)));
            XG_STATUS_PANIC
        }
    }
}

/// The panic boundary for exports that return a value rather than a status: `fallback` on panic.
pub(crate) fn run_value<T>(function: &'static str, fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        set_last_error(format!("{function}: internal panic: {}", panic_message(&*payload)));
        fallback
    })
}

/// Bytes from (pointer, length). NULL is allowed only with length 0. At most `cap` bytes are looked at.
pub(crate) unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &str, cap: usize) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::new(XG_STATUS_NULL_POINTER, format!("{what} is NULL but its length is {len}")));
    }
    if len > isize::MAX as usize {
        return Err(FfiError::new(XG_STATUS_INVALID_ARGUMENT, format!("{what} length {len} is impossibly large")));
    }
    // SAFETY: the caller promises `ptr` points to `len` readable bytes; we read at most `cap` of them.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len.min(cap)) })
}

/// `XG_STATUS_TOO_LARGE` for text longer than `max_len` bytes.
pub(crate) fn check_len(what: &str, len: usize, max_len: usize) -> FfiResult {
    if len > max_len {
        return Err(FfiError::new(XG_STATUS_TOO_LARGE, format!("{what} is {len} bytes; the limit is {max_len}")));
    }
    Ok(())
}

/// UTF-8 text from (pointer, length), at most `max_len` bytes.
pub(crate) unsafe fn text_arg<'a>(ptr: *const c_char, len: usize, what: &str, max_len: usize) -> FfiResult<&'a str> {
    check_len(what, len, max_len)?;
    // SAFETY: forwarded contract; len ≤ max_len so nothing is truncated.
    let bytes = unsafe { bytes_arg(ptr.cast(), len, what, max_len)? };
    std::str::from_utf8(bytes)
        .map_err(|e| FfiError::new(XG_STATUS_INVALID_UTF8, format!("{what} is not valid UTF-8 ({e})")))
}

/// A required pointer to an input struct.
pub(crate) unsafe fn in_ref<'a, T>(ptr: *const T, what: &str) -> FfiResult<&'a T> {
    // SAFETY: the caller promises a non-NULL pointer points to a valid T.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::new(XG_STATUS_NULL_POINTER, format!("{what} is NULL")))
}

/// A required out-pointer.
pub(crate) unsafe fn out_ref<'a, T>(ptr: *mut T, what: &str) -> FfiResult<&'a mut T> {
    // SAFETY: the caller promises a non-NULL pointer points to writable memory for a T.
    unsafe { ptr.as_mut() }.ok_or_else(|| FfiError::new(XG_STATUS_NULL_POINTER, format!("{what} is NULL")))
}

/// A struct that begins with `uint32_t struct_size` and grows only by appending fields (design.md "Growing
/// structs"): a caller built against an older header passes a smaller `struct_size`, and the library uses defaults
/// for the fields it lacks and writes only the fields it has.
pub(crate) trait SizedStruct: Copy {
    /// Earlier layouts still accepted, oldest first: (their `sizeof`, where their last field ends). A new field can
    /// sit in an earlier layout's tail padding, so only the bytes of its own fields are ever taken from it.
    const EARLIER: &'static [(usize, usize)] = &[];

    /// How many leading bytes of a caller's struct of `declared` bytes this library reads or writes.
    fn usable_bytes(declared: u32) -> Option<usize> {
        let declared = declared as usize;
        if declared >= std::mem::size_of::<Self>() {
            return Some(std::mem::size_of::<Self>());
        }
        Self::EARLIER.iter().rev().find(|&&(size, _)| declared >= size).map(|&(_, fields_end)| fields_end)
    }
}

fn struct_size_error<T>(declared: u32, what: &str) -> FfiError {
    let needed = std::mem::size_of::<T>();
    FfiError::new(
        XG_STATUS_INVALID_ARGUMENT,
        format!(
            "{what}.struct_size is {declared}; this library needs {needed} or an earlier layout's size (set it to sizeof)"
        ),
    )
}

/// Reads an input struct; the fields an older caller's layout lacks take `defaults`.
pub(crate) unsafe fn read_sized<T: SizedStruct>(ptr: *const T, what: &str, defaults: T) -> FfiResult<T> {
    if ptr.is_null() {
        return Err(FfiError::new(XG_STATUS_NULL_POINTER, format!("{what} is NULL")));
    }
    // SAFETY: a non-NULL pointer points to a struct beginning with its u32 struct_size (caller's contract).
    let declared = unsafe { ptr.cast::<u32>().read() };
    let bytes = T::usable_bytes(declared).ok_or_else(|| struct_size_error::<T>(declared, what))?;
    let mut value = defaults;
    // SAFETY: the caller's struct has at least `bytes` readable bytes; `value` has room for size_of::<T>() ≥ bytes.
    unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), (&raw mut value).cast::<u8>(), bytes) };
    Ok(value)
}

/// A checked output struct: written once, at most the caller's layout's bytes.
pub(crate) struct SizedOut<T> {
    ptr: *mut T,
    bytes: usize,
    /// The caller's `struct_size`, to write back unchanged.
    pub declared: u32,
}

impl<T: SizedStruct> SizedOut<T> {
    pub fn write(&self, value: T) {
        // SAFETY: checked by `sized_out`: `ptr` is non-NULL and has room for `bytes` ≤ size_of::<T>() bytes.
        unsafe { std::ptr::copy_nonoverlapping((&raw const value).cast::<u8>(), self.ptr.cast::<u8>(), self.bytes) };
    }
}

/// Checks an output struct's pointer and declared size before any state changes.
pub(crate) unsafe fn sized_out<T: SizedStruct>(ptr: *mut T, what: &str) -> FfiResult<SizedOut<T>> {
    if ptr.is_null() {
        return Err(FfiError::new(XG_STATUS_NULL_POINTER, format!("{what} is NULL")));
    }
    // SAFETY: a non-NULL pointer points to a struct beginning with its u32 struct_size (caller's contract).
    let declared = unsafe { ptr.cast::<u32>().read() };
    let bytes = T::usable_bytes(declared).ok_or_else(|| struct_size_error::<T>(declared, what))?;
    Ok(SizedOut { ptr, bytes, declared })
}

/// A library-owned, NUL-terminated copy of `text`, for `xg_string_free`.
pub(crate) fn owned_c_string(text: String) -> *mut c_char {
    // serde_json escapes U+0000, so JSON never holds a NUL; anything else is cut at one rather than lost silently.
    let text = match text.find('\0') {
        Some(at) => text[..at].to_owned(),
        None => text,
    };
    std::ffi::CString::new(text).expect("NUL removed above").into_raw()
}

/// Copies the calling thread's last error message into `buf` (NUL-terminated) and stores the size needed,
/// terminator included, in `*needed` (which may be NULL). With a buffer too small, as much as fits is copied and
/// `XG_STATUS_BUFFER_TOO_SMALL` is returned. The message is empty when no call on this thread has failed.
/// Thread safety: reads only the calling thread's state.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_last_error_message(buf: *mut c_char, buf_len: usize, needed: *mut usize) -> xg_status {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        LAST_ERROR.with(|slot| {
            let message = slot.borrow();
            let want = message.len() + 1;
            if !needed.is_null() {
                // SAFETY: non-NULL `needed` points to a size_t the caller owns.
                unsafe { *needed = want };
            }
            if buf_len == 0 {
                return XG_STATUS_BUFFER_TOO_SMALL; // the size query: `xg_last_error_message(NULL, 0, &needed)`
            }
            if buf.is_null() {
                return XG_STATUS_NULL_POINTER;
            }
            let copy = message.len().min(buf_len - 1);
            // SAFETY: `buf` has room for `buf_len` bytes; we write `copy + 1 ≤ buf_len`.
            unsafe {
                std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), copy);
                *buf.add(copy) = 0;
            }
            if copy < message.len() { XG_STATUS_BUFFER_TOO_SMALL } else { XG_STATUS_OK }
        })
    }));
    outcome.unwrap_or(XG_STATUS_PANIC)
}

/// The name of a status code (`"ok"`, `"null_pointer"`, …) as a static string; `"unknown_status"` for a code this
/// version does not define. Never NULL; never freed. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_status_name(status: xg_status) -> *const c_char {
    run_value("xg_status_name", c"unknown_status".as_ptr(), || {
        let name: &'static CStr = match status {
            XG_STATUS_OK => c"ok",
            XG_STATUS_NULL_POINTER => c"null_pointer",
            XG_STATUS_INVALID_UTF8 => c"invalid_utf8",
            XG_STATUS_INVALID_ARGUMENT => c"invalid_argument",
            XG_STATUS_MALFORMED_RESPONSE => c"malformed_response",
            XG_STATUS_BUFFER_TOO_SMALL => c"buffer_too_small",
            XG_STATUS_TOO_LARGE => c"too_large",
            XG_STATUS_UNKNOWN_PERMIT => c"unknown_permit",
            XG_STATUS_UNKNOWN_RESERVATION => c"unknown_reservation",
            XG_STATUS_TOO_MANY_TENANTS => c"too_many_tenants",
            XG_STATUS_WRONG_CLOCK => c"wrong_clock",
            XG_STATUS_INTERRUPTED => c"interrupted",
            XG_STATUS_BOOKING_TOO_FAR => c"booking_too_far",
            XG_STATUS_STORE_UNAVAILABLE => c"store_unavailable",
            XG_STATUS_STORE_ERROR => c"store_error",
            XG_STATUS_PANIC => c"panic",
            _ => c"unknown_status",
        };
        name.as_ptr()
    })
}

/// Frees a string the library returned (classification or snapshot JSON). NULL is a no-op. Freeing the same
/// string twice, or a string the library did not return, is undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_string_free(string: *mut c_char) {
    if string.is_null() {
        return;
    }
    run_value("xg_string_free", (), || {
        // SAFETY: the caller passes a pointer from `owned_c_string` exactly once.
        drop(unsafe { std::ffi::CString::from_raw(string) });
    });
}

/// The library version, e.g. `"0.1.0"`: a static string, never freed. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_version() -> *const c_char {
    run_value("xg_version", c"".as_ptr(), || {
        const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("the version has no NUL"),
        };
        VERSION.as_ptr()
    })
}

/// The ABI version this header describes; bumped whenever a struct layout or a signature changes.
pub const XG_ABI_VERSION: u32 = 2;

/// The ABI version of the loaded library. Wrappers compare it at load time: a different value
/// means the struct layouts or function signatures differ. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_abi_version() -> u32 {
    run_value("xg_abi_version", 0, || XG_ABI_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 2 of a struct: version 1 ended after `a` (size 8); `b` was appended.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Grown {
        struct_size: u32,
        a: u32,
        b: u64,
    }

    impl SizedStruct for Grown {
        const EARLIER: &'static [(usize, usize)] = &[(8, 8)];
    }

    #[repr(C)]
    struct Version1 {
        struct_size: u32,
        a: u32,
    }

    #[test]
    fn an_older_callers_struct_is_read_with_defaults_and_written_only_as_far_as_it_goes() {
        let defaults = Grown { struct_size: 0, a: 0, b: 77 };
        let old = Version1 { struct_size: 8, a: 5 };
        let read = unsafe { read_sized((&raw const old).cast::<Grown>(), "old", defaults) }.ok().unwrap();
        assert_eq!((read.a, read.b), (5, 77), "a from the caller, b the default");

        // Written into a version-1 struct followed by other memory: the memory after it is untouched.
        #[repr(C, align(8))]
        struct Buffer([u8; 16]);
        let mut buffer = Buffer([0xAA; 16]);
        buffer.0[..4].copy_from_slice(&8u32.to_ne_bytes());
        let out = unsafe { sized_out((&raw mut buffer).cast::<Grown>(), "out") }.ok().unwrap();
        out.write(Grown { struct_size: out.declared, a: 9, b: 123 });
        assert_eq!(&buffer.0[4..8], &9u32.to_ne_bytes());
        assert_eq!(&buffer.0[8..], &[0xAA; 8], "nothing written past the caller's struct");

        let too_small = Version1 { struct_size: 4, a: 1 };
        let refused = unsafe { read_sized((&raw const too_small).cast::<Grown>(), "old", defaults) };
        assert!(refused.is_err_and(|e| e.status == XG_STATUS_INVALID_ARGUMENT && e.message.contains("struct_size")));
        let current = Grown { struct_size: 16, a: 1, b: 2 };
        assert_eq!(unsafe { read_sized(&raw const current, "new", defaults) }.ok(), Some(current));
    }
}
