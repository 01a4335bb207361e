//! Raw responses through the C ABI: any bytes classify or fail with a status, never crash; the JSON round-trips.
#![no_main]

use std::ffi::CStr;
use std::ptr;

use libfuzzer_sys::fuzz_target;
use xeroguard::ffi::*;

fuzz_target!(|data: &[u8]| {
    let mut out = xg_classification { struct_size: std::mem::size_of::<xg_classification>() as u32, ..Default::default() };
    let mut json = ptr::null_mut();
    let status = unsafe { xg_classify_raw(data.as_ptr(), data.len(), 1_700_000_000_000, &mut out, &mut json) };
    match status {
        XG_STATUS_OK => {
            let text = unsafe { CStr::from_ptr(json) }.to_str().expect("UTF-8 JSON");
            let value: serde_json_like::Value = text.parse().expect("valid JSON");
            assert_eq!(value.keys, 22, "every §5 key");
            assert_eq!(out.retryable, out.action == xeroguard::Action::Retry.code());
            unsafe { xg_string_free(json) };
        }
        XG_STATUS_MALFORMED_RESPONSE | XG_STATUS_TOO_LARGE => assert!(json.is_null()),
        other => panic!("unexpected status {other}"),
    }
});

/// Counts top-level keys without a JSON dependency in the fuzz crate: the library's JSON is compact and flat at
/// the top level except for arrays of strings/numbers.
mod serde_json_like {
    pub struct Value {
        pub keys: usize,
    }

    impl std::str::FromStr for Value {
        type Err = &'static str;
        fn from_str(s: &str) -> Result<Self, Self::Err> {
            if !(s.starts_with('{') && s.ends_with('}')) {
                return Err("not an object");
            }
            let (mut depth, mut in_string, mut escaped, mut keys) = (0, false, false, 0);
            let bytes = s.as_bytes();
            for (i, &b) in bytes.iter().enumerate() {
                if in_string {
                    match b {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => {
                        in_string = true;
                        if depth == 1 && matches!(bytes[i - 1], b'{' | b',') {
                            keys += 1;
                        }
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => depth -= 1,
                    _ => {}
                }
            }
            if depth != 0 || in_string { Err("unbalanced") } else { Ok(Value { keys }) }
        }
    }
}
