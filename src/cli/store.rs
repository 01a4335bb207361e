//! The CLI's one way into an app's shared store, for `snapshot` and `top`: it opens the store, lists the tenants with
//! state, and reads their snapshots, changing nothing.

use xeroguard::pacing::{PacingError, RedisOptions, Snapshot};
use xeroguard::{Clock, Limiter};

use super::view::{Reading, by_pressure};

/// The most tenants `--all` and `top` list unless `--max-tenants` says otherwise; each is one snapshot (one round
/// trip) per reading.
pub const DEFAULT_MAX_TENANTS: usize = 1000;
/// The most `--max-tenants` may ask for.
pub const MAX_TENANTS_LIMIT: usize = 100_000;

pub struct Store {
    limiter: Limiter,
    prefix: String,
}

impl Store {
    /// Opens the store under `prefix` on the server's clock, read-only (issue 20): nothing is written, not even
    /// limits to a prefix no worker has used, whose snapshots say `PacingError::NoStoredLimits`; snapshots and
    /// listings only read (tests/cli_top.rs checks).
    pub fn open(url: &str, prefix: &str) -> Result<Self, PacingError> {
        let limiter = Limiter::inspect_redis(RedisOptions::new(url, prefix), Clock::Monotonic)?;
        Ok(Store { limiter, prefix: prefix.to_owned() })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn snapshot(&self, tenant: &str) -> Result<Snapshot, PacingError> {
        self.limiter.snapshot(tenant, self.limiter.now())
    }

    /// The app's window, and up to `max_tenants` tenants with state, busiest first.
    pub fn read(&self, max_tenants: usize) -> Result<Reading, PacingError> {
        let listing = self.limiter.tenants_with_state(max_tenants)?;
        let mut tenants = listing.tenants.iter().map(|t| self.snapshot(t)).collect::<Result<Vec<_>, _>>()?;
        by_pressure(&mut tenants);
        // Read last, so the header's time is no older than any row's.
        let app = self.snapshot("")?;
        Ok(Reading { prefix: self.prefix.clone(), app, tenants, listing, max_tenants })
    }
}
