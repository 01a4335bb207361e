//! The C ABI: the only `unsafe` code in the crate. Conventions (design.md):
//! - functions `xg_<object>_<verb>`, types `xg_<name>`, constants `XG_<NAME>`;
//! - fallible functions return `xg_status`; details via `xg_last_error_message` (thread-local);
//! - every export runs inside [`boundary::run`], so a panic becomes `XG_STATUS_PANIC`, never an abort;
//! - pointers are checked (NULL only with length 0), text is checked for UTF-8, enums arrive as `uint32_t`;
//! - out-params are written only on success; structs begin with `struct_size`.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod boundary;
mod classify;
mod limiter;

pub use boundary::*;
pub use classify::*;
pub use limiter::*;
