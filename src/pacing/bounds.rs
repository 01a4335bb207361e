//! The bounds both engines enforce, the Rust one and the Lua one on Redis. build.rs compiles this file on its own
//! and writes these values into the Lua engine's constants (`OUT_DIR/constants.lua`), so each is written once: keep
//! it to plain constants and the [`LUA`] list.

/// How far ahead a reservation may be booked: windows store 4-byte millisecond offsets, and a booking must stay
/// within their range together with the longest window (see `Limits::validate`).
pub const MAX_BOOKING_AHEAD_MS: u64 = 1 << 31;

/// The most calls one tenant may have booked ahead (reservations whose instant has not come). A reserve beyond it is
/// refused with `PacingError::TooManyBookings`. It bounds what a reserve costs: the search for a free slot reads
/// the bookings it passes, and on Redis it runs on the server's one thread, in front of every other app's calls.
pub const MAX_BOOKINGS: u32 = 2_000;

/// The most calls an app may have booked ahead across its tenants (the app window holds every booking).
pub const MAX_APP_BOOKINGS: u32 = 10_000;

/// Calls a server reports (`X-*-Remaining`) and the limiter did not know of go at now in windows up to this long:
/// the wait they cause is at most the window plus its margin, and a limiter set above the server's limit learns it
/// without a 429. In longer windows (the day) they are spread over the window, which waiting a whole day for would
/// stop a tenant for a day (see engine.rs `add_phantoms`).
pub(crate) const PHANTOMS_AT_NOW_UP_TO_MS: u64 = 60_000;

/// The names the Lua engine knows these by.
#[allow(dead_code, reason = "the Lua engine's: build.rs writes it into the constants")]
pub(crate) const LUA: &[(&str, u64)] = &[
    ("HORIZON_MS", MAX_BOOKING_AHEAD_MS),
    ("MAX_BOOKINGS", MAX_BOOKINGS as u64),
    ("MAX_APP_BOOKINGS", MAX_APP_BOOKINGS as u64),
    ("PHANTOMS_AT_NOW_UP_TO_MS", PHANTOMS_AT_NOW_UP_TO_MS),
];
