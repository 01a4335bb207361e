//! Limits (xero-reference §3, §7). Every number is configurable: Xero's limits differ by plan and change.

/// The longest window (with its margin) a limiter keeps: windows store 4-byte millisecond offsets, which must cover
/// the window and the booking horizon ([`super::MAX_BOOKING_AHEAD_MS`]) together.
pub const MAX_WINDOW_SPAN_MS: u64 = (1 << 31) - 1;

/// One rolling window: at most `limit` calls in any `window_ms`, widened by `margin_ms` because Xero counts
/// arrival time and we count send time. `limit == 0` disables the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLimit {
    pub limit: u32,
    pub window_ms: u64,
    pub margin_ms: u64,
}

impl WindowLimit {
    pub const fn new(limit: u32, window_ms: u64, margin_ms: u64) -> Self {
        WindowLimit { limit, window_ms, margin_ms }
    }

    /// The span the limiter enforces: the window plus its margin.
    pub(crate) fn span(&self) -> u64 {
        self.window_ms.saturating_add(self.margin_ms)
    }

    pub(crate) fn cap(&self) -> usize {
        self.limit as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Per tenant: 60 calls per 60 s.
    pub tenant_minute: WindowLimit,
    /// Per tenant: 5000 calls per 24 h.
    pub tenant_day: WindowLimit,
    /// Per tenant: 5 calls in flight (0 = unlimited).
    pub tenant_concurrency: u32,
    /// Per app, across all tenants: 10,000 calls per 60 s.
    pub app_minute: WindowLimit,
    /// A permit not released within this time expires, so a crashed caller cannot hold a slot forever.
    pub permit_timeout_ms: u64,
    /// The most tenants tracked at once (0 = no cap). Idle tenants are evicted first.
    pub max_tenants: u32,
}

impl Default for Limits {
    /// Xero's published limits, with a 500 ms margin on the minute windows and 60 s on the day window.
    fn default() -> Self {
        Limits {
            tenant_minute: WindowLimit::new(60, 60_000, 500),
            tenant_day: WindowLimit::new(5000, 86_400_000, 60_000),
            tenant_concurrency: 5,
            app_minute: WindowLimit::new(10_000, 60_000, 500),
            permit_timeout_ms: 120_000,
            max_tenants: 0,
        }
    }
}

impl Limits {
    /// Xero's published limits exactly, with no margins: the theoretical maximum throughput.
    pub fn exact() -> Self {
        let d = Limits::default();
        Limits {
            tenant_minute: WindowLimit { margin_ms: 0, ..d.tenant_minute },
            tenant_day: WindowLimit { margin_ms: 0, ..d.tenant_day },
            app_minute: WindowLimit { margin_ms: 0, ..d.app_minute },
            ..d
        }
    }

    /// Checks the configuration: an enabled window needs a positive length, and permits must be able to expire.
    pub fn validate(&self) -> Result<(), String> {
        for (name, w) in
            [("tenant_minute", self.tenant_minute), ("tenant_day", self.tenant_day), ("app_minute", self.app_minute)]
        {
            if w.limit > 0 && w.window_ms == 0 {
                return Err(format!("{name}: window_ms must be positive when limit is set"));
            }
            if w.span() > MAX_WINDOW_SPAN_MS {
                return Err(format!("{name}: window_ms + margin_ms must be at most {MAX_WINDOW_SPAN_MS} (24.8 days)"));
            }
        }
        if self.permit_timeout_ms == 0 {
            return Err("permit_timeout_ms must be positive".into());
        }
        Ok(())
    }

    /// The limits every tenant has unless it has its own.
    pub fn tenant(&self) -> TenantLimits {
        TenantLimits {
            minute_limit: self.tenant_minute.limit,
            day_limit: self.tenant_day.limit,
            concurrency: self.tenant_concurrency,
        }
    }
}

/// A tenant's own limits, e.g. the daily limit of its Xero plan. Window lengths and margins stay the app's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantLimits {
    pub minute_limit: u32,
    pub day_limit: u32,
    pub concurrency: u32,
}
