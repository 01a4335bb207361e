//! A panic inside an export becomes XG_STATUS_PANIC with a message, never an abort, and the library keeps working.
//! Needs the test-only feature `fault-injection`, which every test build has (Cargo.toml's dev-dependencies).
#![cfg(feature = "fault-injection")]

use std::ptr;

use xeroguard::ffi::*;

mod common;

fn classify_429(out: &mut xg_classification) -> xg_status {
    let raw = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\n\r\n";
    out.struct_size = std::mem::size_of::<xg_classification>() as u32;
    unsafe { xg_classify_raw(raw.as_ptr(), raw.len(), 0, out, ptr::null_mut()) }
}

#[test]
fn an_injected_panic_is_caught_and_the_library_keeps_working() {
    let mut c = xg_classification::default();
    inject_panic_in_next_call();
    assert_eq!(classify_429(&mut c), XG_STATUS_PANIC);
    assert!(
        common::last_error().contains("xg_classify_raw: internal panic: injected fault"),
        "{}",
        common::last_error()
    );
    assert_eq!((c.status, c.recommended_wait_ms), (0, 0), "no output on failure");
    assert_eq!(classify_429(&mut c), XG_STATUS_OK);
    assert_eq!(c.recommended_wait_ms, 5000);

    let mut limiter: *mut xg_limiter = ptr::null_mut();
    assert_eq!(unsafe { xg_limiter_new(ptr::null(), XG_CLOCK_MANUAL, &mut limiter) }, XG_STATUS_OK);
    let mut d = xg_decision { struct_size: std::mem::size_of::<xg_decision>() as u32, ..Default::default() };
    inject_panic_in_next_call();
    assert_eq!(unsafe { xg_limiter_acquire(limiter, c"t".as_ptr(), 1, &mut d) }, XG_STATUS_PANIC);
    assert_eq!(d.granted, 0);
    for _ in 0..5 {
        assert_eq!(unsafe { xg_limiter_acquire(limiter, c"t".as_ptr(), 1, &mut d) }, XG_STATUS_OK);
        assert_eq!(d.granted, 1, "the limiter works after the panic");
    }
    unsafe { xg_limiter_free(limiter) };
}
