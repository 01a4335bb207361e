//! The numbers the Redis protocol and the Lua engine share. build.rs compiles this file on its own and writes them
//! into the engine's constants (`OUT_DIR/constants.lua`, with the bounds and the reason codes), so each is written
//! once: keep it to plain constants and the [`LUA`] list (crate-visible only: cbindgen would put public ones into
//! the C header).

/// The layout of the stored logs and headers. It is part of every key name but the config's, so processes of two
/// versions never read each other's state (they share the limits, and not the windows, until all run one version).
pub(crate) const LOG_FORMAT_VERSION: u64 = 2;

/// How many comma-separated numbers the stored limits have (init.lua): minute limit, window, margin; day limit,
/// window, margin; concurrency; app-minute limit, window, margin; permit timeout. A later version may add more.
pub(crate) const LIMIT_FIELDS: u64 = 11;

/// A key lives this long past the last instant its content can matter (a permit's expiry, a call leaving its
/// window, a block's end).
#[allow(dead_code, reason = "the Lua engine's: build.rs writes it into the constants")]
pub(crate) const KEY_TTL_GRACE_MS: u64 = 1_000;

/// A key's TTL is extended by up to this much beyond what it needs (never more than its window), so it is refreshed
/// about once a minute, not on every call.
#[allow(dead_code, reason = "the Lua engine's: build.rs writes it into the constants")]
pub(crate) const TTL_SLACK_MS: u64 = 60_000;

/// The app key keeps a copy of the config (the limits, the app block, which overrides exist), read again this
/// often; init and set_override make every process read it at its next call.
#[allow(dead_code, reason = "the Lua engine's: build.rs writes it into the constants")]
pub(crate) const CONFIG_REFRESH_MS: u64 = 1_000;

/// Result keys (what a retried operation without a permit is answered from) live this many store deadlines: as
/// long as a retry, or an original that reaches the server after its retry, can come.
pub(crate) const RESULT_TTL_DEADLINES: u32 = 4;

/// The names the Lua engine knows these by.
#[allow(dead_code, reason = "the Lua engine's: build.rs writes it into the constants")]
pub(crate) const LUA: &[(&str, u64)] = &[
    ("FORMAT", LOG_FORMAT_VERSION),
    ("LIMIT_FIELDS", LIMIT_FIELDS),
    ("GRACE_MS", KEY_TTL_GRACE_MS),
    ("TTL_SLACK_MS", TTL_SLACK_MS),
    ("CONFIG_REFRESH_MS", CONFIG_REFRESH_MS),
];
