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

/// The names the Lua engine knows these by.
#[allow(dead_code, reason = "the Lua engine's: build.rs writes it into the constants")]
pub(crate) const LUA: &[(&str, u64)] = &[
    ("HORIZON_MS", MAX_BOOKING_AHEAD_MS),
    ("MAX_BOOKINGS", MAX_BOOKINGS as u64),
    ("MAX_APP_BOOKINGS", MAX_APP_BOOKINGS as u64),
];
