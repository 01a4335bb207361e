//! Raw responses through the C ABI: any bytes classify or fail with a status, never crash; the JSON round-trips.
#![no_main]

use std::ffi::CStr;
use std::ptr;

use libfuzzer_sys::fuzz_target;
use xeroguard::ffi::*;

fuzz_target!(|data: &[u8]| {
    let mut out =
        xg_classification { struct_size: std::mem::size_of::<xg_classification>() as u32, ..Default::default() };
    let mut json = ptr::null_mut();
    let status = unsafe { xg_classify_raw(data.as_ptr(), data.len(), 1_700_000_000_000, &mut out, &mut json) };
    match status {
        XG_STATUS_OK => {
            let text = unsafe { CStr::from_ptr(json) }.to_str().expect("UTF-8 JSON");
            let value: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
            assert_eq!(value.as_object().map(|o| o.len()), Some(22), "every §5 key");
            assert_eq!(out.retryable, u8::from(out.action == xeroguard::Action::Retry.code()));
            unsafe { xg_string_free(json) };
        }
        XG_STATUS_MALFORMED_RESPONSE | XG_STATUS_TOO_LARGE => assert!(json.is_null()),
        other => panic!("unexpected status {other}"),
    }
});
