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
/// An input struct sets a field this library does not know: its `struct_size` is a newer header's and a byte past
/// this library's struct is not zero. Use a library at least as new as the header, or leave the new fields zero.
pub const XG_STATUS_UNKNOWN_FIELDS: xg_status = 15;
/// The shared store did not accept the credentials (WRONGPASS, NOAUTH): fix the user and password in the store URL.
pub const XG_STATUS_STORE_AUTH: xg_status = 16;
/// The shared store's ACL does not allow a command the limiter needs (NOPERM, an unknown or renamed command): give
/// the URL's user the commands the README lists.
pub const XG_STATUS_STORE_FORBIDDEN: xg_status = 17;
/// The limits given differ from those stored for the key prefix (the message names both): set
/// `replace_limits` = `XG_STORED_LIMITS_REPLACE` to write them over the stored ones, or `_ADOPT` to pace by them.
pub const XG_STATUS_LIMITS_DIFFER: xg_status = 18;
/// A limiter opened for inspection (`xg_limiter_inspect_redis`) found no limits stored for its key prefix.
pub const XG_STATUS_NO_STORED_LIMITS: xg_status = 19;
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
/// for the fields it lacks and writes only the fields it has; a caller built against a newer header passes a larger
/// one, accepted as input only when the fields this library does not know are zero, and told on output how much was
/// filled.
pub(crate) trait SizedStruct: Copy {
    /// Earlier layouts still accepted, oldest first: (their `sizeof`, where their last field ends). A new field can
    /// sit in an earlier layout's tail padding, so only the bytes of its own fields are ever taken from it.
    const EARLIER: &'static [(usize, usize)] = &[];

    /// The layout a caller's struct of `declared` bytes has, as (its `sizeof`, how many leading bytes this library
    /// reads or writes): the newest one that fits.
    fn layout(declared: u32) -> Option<(usize, usize)> {
        let (declared, current) = (declared as usize, std::mem::size_of::<Self>());
        if declared >= current {
            return Some((current, current));
        }
        Self::EARLIER.iter().rev().find(|&&(size, _)| declared >= size).copied()
    }
}

/// The largest `struct_size` believed: a newer header's struct may be larger than this library's, but not by pages
/// (a garbage size must not make the library read far past the caller's struct).
pub const XG_MAX_STRUCT_SIZE: u32 = 4096;

fn struct_size_error<T>(declared: u32, what: &str) -> FfiError {
    let needed = std::mem::size_of::<T>();
    FfiError::new(
        XG_STATUS_INVALID_ARGUMENT,
        format!(
            "{what}.struct_size is {declared}; this library needs {needed}, an earlier layout's size, or a newer \
             header's up to {XG_MAX_STRUCT_SIZE} (set it to sizeof)"
        ),
    )
}

/// The caller's `struct_size` and its layout (see [`SizedStruct::layout`]).
///
/// # Safety
/// `ptr` is non-NULL and points to a struct that begins with its `uint32_t struct_size`.
unsafe fn declared_size<T: SizedStruct>(ptr: *const T, what: &str) -> FfiResult<(u32, (usize, usize))> {
    // SAFETY: the caller's contract (above).
    let declared = unsafe { ptr.cast::<u32>().read() };
    if declared > XG_MAX_STRUCT_SIZE {
        return Err(struct_size_error::<T>(declared, what));
    }
    let layout = T::layout(declared).ok_or_else(|| struct_size_error::<T>(declared, what))?;
    Ok((declared, layout))
}

/// Reads an input struct; the fields an older caller's layout lacks take `defaults`. A newer caller's struct is read
/// only when every byte this library does not know is zero (Linux's `copy_struct_from_user` rule): a field it cannot
/// honour must not be dropped silently, so a non-zero one is `XG_STATUS_UNKNOWN_FIELDS`.
///
/// # Safety
/// `ptr` is NULL, or points to a struct beginning with its `uint32_t struct_size`, readable for that many bytes.
pub(crate) unsafe fn read_sized<T: SizedStruct>(ptr: *const T, what: &str, defaults: T) -> FfiResult<T> {
    if ptr.is_null() {
        return Err(FfiError::new(XG_STATUS_NULL_POINTER, format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller's contract.
    let (declared, (_, bytes)) = unsafe { declared_size(ptr, what)? };
    let known = std::mem::size_of::<T>();
    if declared as usize > known {
        // SAFETY: the caller's struct is `declared` bytes long (its contract), so its tail past ours is readable.
        let tail = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>().add(known), declared as usize - known) };
        if let Some(at) = tail.iter().position(|&b| b != 0) {
            return Err(FfiError::new(
                XG_STATUS_UNKNOWN_FIELDS,
                format!(
                    "{what} sets byte {} of its {declared}, beyond the {known} this library knows: a field of a newer \
                     header (use a library at least as new, or leave it zero)",
                    known + at
                ),
            ));
        }
    }
    let mut value = defaults;
    // SAFETY: the caller's struct has at least `bytes` readable bytes; `value` has room for size_of::<T>() ≥ bytes.
    unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), (&raw mut value).cast::<u8>(), bytes) };
    Ok(value)
}

/// A checked output struct: written once, at most the caller's layout's bytes, with `struct_size` set to the size of
/// the layout written, so a caller built against a newer header knows which of its fields this library filled (and
/// can pass the struct back as it is).
pub(crate) struct SizedOut<T> {
    ptr: *mut T,
    /// (the layout's `sizeof`, the bytes written)
    layout: (usize, usize),
}

impl<T: SizedStruct> SizedOut<T> {
    pub fn write(&self, value: T) {
        let (size, bytes) = self.layout;
        // SAFETY: checked by `sized_out`: `ptr` is non-NULL and has room for `bytes` ≤ size_of::<T>() bytes, the first
        // four of which are its u32 struct_size (every SizedStruct begins with it; `bytes` ≥ 4 for every layout).
        unsafe {
            std::ptr::copy_nonoverlapping((&raw const value).cast::<u8>(), self.ptr.cast::<u8>(), bytes);
            self.ptr.cast::<u32>().write(size as u32);
        }
    }
}

/// Checks an output struct's pointer and declared size before any state changes.
///
/// # Safety
/// `ptr` is NULL, or points to a writable struct beginning with its `uint32_t struct_size`, that many bytes long.
pub(crate) unsafe fn sized_out<T: SizedStruct>(ptr: *mut T, what: &str) -> FfiResult<SizedOut<T>> {
    if ptr.is_null() {
        return Err(FfiError::new(XG_STATUS_NULL_POINTER, format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller's contract.
    let (_, layout) = unsafe { declared_size(ptr.cast_const(), what)? };
    Ok(SizedOut { ptr, layout })
}

/// A flag from a caller's struct (`what->field`): C has `uint8_t` flags (a C `bool` byte other than 0 or 1 would be
/// undefined behaviour in Rust), so anything but 0 or 1 is refused, naming the field.
pub(crate) fn flag(value: u8, what: &str, field: &str) -> FfiResult<bool> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => {
            Err(FfiError::new(XG_STATUS_INVALID_ARGUMENT, format!("{what}->{field} is {other}; a flag is 0 or 1")))
        }
    }
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

/// Copies `text` into `buf` (NUL-terminated) and stores the size needed, terminator included, in `*needed` (which
/// may be NULL): with `buf_len` 0 only the size (`XG_STATUS_BUFFER_TOO_SMALL`); with a buffer too small as much as
/// fits and `XG_STATUS_BUFFER_TOO_SMALL`; a NULL `buf` with a length, `XG_STATUS_NULL_POINTER`.
///
/// # Safety
/// `buf` is NULL or has room for `buf_len` bytes; `needed` is NULL or points to a writable size_t.
pub(crate) unsafe fn copy_text(text: &str, buf: *mut c_char, buf_len: usize, needed: *mut usize) -> xg_status {
    let want = text.len() + 1;
    if !needed.is_null() {
        // SAFETY: non-NULL `needed` points to a size_t the caller owns.
        unsafe { *needed = want };
    }
    if buf_len == 0 {
        return XG_STATUS_BUFFER_TOO_SMALL; // the size query: `f(..., NULL, 0, &needed)`
    }
    if buf.is_null() {
        return XG_STATUS_NULL_POINTER;
    }
    let copy = text.len().min(buf_len - 1);
    // SAFETY: `buf` has room for `buf_len` bytes; we write `copy + 1 ≤ buf_len`.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), copy);
        *buf.add(copy) = 0;
    }
    if copy < text.len() { XG_STATUS_BUFFER_TOO_SMALL } else { XG_STATUS_OK }
}

/// Copies the calling thread's last error message into `buf` (NUL-terminated) and stores the size needed,
/// terminator included, in `*needed` (which may be NULL). With a buffer too small, as much as fits is copied and
/// `XG_STATUS_BUFFER_TOO_SMALL` is returned. The message is empty when no call on this thread has failed.
/// Thread safety: reads only the calling thread's state.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xg_last_error_message(buf: *mut c_char, buf_len: usize, needed: *mut usize) -> xg_status {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract, as copy_text states it.
        LAST_ERROR.with(|slot| unsafe { copy_text(&slot.borrow(), buf, buf_len, needed) })
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
            XG_STATUS_UNKNOWN_FIELDS => c"unknown_fields",
            XG_STATUS_STORE_AUTH => c"store_auth",
            XG_STATUS_STORE_FORBIDDEN => c"store_forbidden",
            XG_STATUS_LIMITS_DIFFER => c"limits_differ",
            XG_STATUS_NO_STORED_LIMITS => c"no_stored_limits",
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

/// The ABI version this header describes. It is bumped only by a change an older caller cannot survive (a function
/// removed or its signature changed, a struct changed other than by appending fields); appended fields, new functions
/// and new codes keep it. ABI 3 is the first whose structs grow (the rules at the top of this header).
pub const XG_ABI_VERSION: u32 = 3;

/// The oldest ABI whose callers this library still serves unchanged (the released C suites under tests/abi/ pass).
pub const XG_ABI_OLDEST_VERSION: u32 = 2;

/// The ABI version the loaded library implements. It serves every caller built against an ABI from
/// `xg_abi_oldest_version()` to this one, so a caller checks `xg_abi_oldest_version() <= XG_ABI_VERSION <=
/// xg_abi_version()`, and that `xg_version()` is at least its header's `XEROGUARD_VERSION_*` (a function or field
/// added in a later version is missing from an older library). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_abi_version() -> u32 {
    run_value("xg_abi_version", 0, || XG_ABI_VERSION)
}

/// The oldest ABI version whose callers the loaded library still serves (see `xg_abi_version`). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn xg_abi_oldest_version() -> u32 {
    run_value("xg_abi_oldest_version", 0, || XG_ABI_OLDEST_VERSION)
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
        out.write(Grown { struct_size: 0, a: 9, b: 123 });
        assert_eq!(&buffer.0[..4], &8u32.to_ne_bytes(), "struct_size says what was filled: the version-1 layout");
        assert_eq!(&buffer.0[4..8], &9u32.to_ne_bytes());
        assert_eq!(&buffer.0[8..], &[0xAA; 8], "nothing written past the caller's struct");

        let too_small = Version1 { struct_size: 4, a: 1 };
        let refused = unsafe { read_sized((&raw const too_small).cast::<Grown>(), "old", defaults) };
        assert!(refused.is_err_and(|e| e.status == XG_STATUS_INVALID_ARGUMENT && e.message.contains("struct_size")));
        let current = Grown { struct_size: 16, a: 1, b: 2 };
        assert_eq!(unsafe { read_sized(&raw const current, "new", defaults) }.ok(), Some(current));
    }

    /// Version 3 of the struct, from a newer header: `c` appended.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Version3 {
        grown: Grown,
        c: u64,
    }

    #[test]
    fn a_newer_callers_struct_is_read_only_when_what_this_library_does_not_know_is_zero() {
        let defaults = Grown { struct_size: 0, a: 0, b: 0 };
        let mut newer = Version3 { grown: Grown { struct_size: 24, a: 1, b: 2 }, c: 0 };
        let read = unsafe { read_sized((&raw const newer).cast::<Grown>(), "limits", defaults) };
        assert_eq!(read.ok().map(|g| (g.a, g.b)), Some((1, 2)), "an unknown field left zero is harmless");
        newer.c = 1 << 40;
        let refused = unsafe { read_sized((&raw const newer).cast::<Grown>(), "limits", defaults) }.err().unwrap();
        assert_eq!(refused.status, XG_STATUS_UNKNOWN_FIELDS);
        assert!(refused.message.contains("limits sets byte 21 of its 24"), "{}", refused.message);

        // As output, it gets the fields this library has, and struct_size says so; its own field is left alone.
        newer.c = 0xC0FFEE;
        let out = unsafe { sized_out((&raw mut newer).cast::<Grown>(), "out") }.ok().unwrap();
        out.write(Grown { struct_size: 0, a: 7, b: 8 });
        assert_eq!((newer.grown.struct_size, newer.grown.a, newer.grown.b, newer.c), (16, 7, 8, 0xC0FFEE));

        let absurd = Version3 { grown: Grown { struct_size: XG_MAX_STRUCT_SIZE + 1, a: 0, b: 0 }, c: 0 };
        let refused = unsafe { read_sized((&raw const absurd).cast::<Grown>(), "limits", defaults) }.err().unwrap();
        assert_eq!(refused.status, XG_STATUS_INVALID_ARGUMENT, "a garbage size is not read past");
    }

    #[test]
    fn flags_are_zero_or_one() {
        assert_eq!(flag(0, "request", "has_idempotency_key").ok(), Some(false));
        assert_eq!(flag(1, "request", "has_idempotency_key").ok(), Some(true));
        let refused = flag(2, "request", "has_idempotency_key").err().unwrap();
        assert_eq!(refused.status, XG_STATUS_INVALID_ARGUMENT);
        assert_eq!(refused.message, "request->has_idempotency_key is 2; a flag is 0 or 1");
    }
}
