//! Key names. Every key of one app shares the hash tag `{prefix}`, so a script touching a tenant and the app window
//! lives in one Cluster slot. Tenant ids are untrusted: they are percent-encoded (everything but `A-Z a-z 0-9 - _ .`),
//! so no id can contain a brace or a separator, and no two ids map to one key.

use std::fmt::Write;

use super::numbers::LOG_FORMAT_VERSION;

pub struct KeySpace {
    /// `xg:{prefix}:`
    base: String,
    /// `xg:{prefix}:<format>:`: every key whose layout the engine defines (all but the config hash).
    state: String,
}

/// The longest key prefix accepted.
pub const MAX_PREFIX_BYTES: usize = 128;

impl KeySpace {
    pub fn new(prefix: &str) -> Result<Self, String> {
        if prefix.is_empty() || prefix.len() > MAX_PREFIX_BYTES {
            return Err(format!("the key prefix must have 1 to {MAX_PREFIX_BYTES} bytes"));
        }
        if let Some(bad) = prefix.chars().find(|c| matches!(c, '{' | '}') || c.is_whitespace() || c.is_control()) {
            return Err(format!("the key prefix may not contain {bad:?} (braces, spaces or control characters)"));
        }
        let base = format!("xg:{{{prefix}}}:");
        let state = format!("{base}{LOG_FORMAT_VERSION}:");
        Ok(KeySpace { base, state })
    }

    /// The limits, the time floor, the app block and the tenants' own limits (a hash without TTL).
    pub fn config(&self) -> String {
        format!("{}cfg", self.base)
    }

    /// Every header, permit and result (see engine.lua): one hash, so that a decision is one read and one write.
    pub fn state(&self) -> String {
        format!("{}s", self.state)
    }

    /// The config field holding a tenant's own limits.
    pub fn override_field(&self, tenant: &str) -> String {
        format!("o:{}", encode(tenant))
    }

    /// The state hash's field of a permit (and of a tenantless grant's result).
    pub fn permit_field(id: u64) -> String {
        format!("p:{id}")
    }

    /// The tenant as the engine names it ('' for the tenantless scope, which no tenant id encodes to).
    pub fn tenant_name(&self, tenant: &str) -> String {
        encode(tenant)
    }

    /// The keys every engine call takes, in order (see engine.lua): config, state, the app-minute window's ring,
    /// the tenant's minute and day rings.
    pub fn for_tenant(&self, tenant: &str) -> Vec<String> {
        let t = format!("{}t:{}", self.state, encode(tenant));
        vec![self.config(), self.state(), format!("{}a", self.state), format!("{t}:m"), format!("{t}:d")]
    }
}

fn encode(tenant: &str) -> String {
    let mut out = String::with_capacity(tenant.len());
    for b in tenant.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_cannot_reach_other_keys_or_slots() {
        let k = KeySpace::new("app").unwrap();
        let hostile = ["x}:t:y", "{other}", "a:m", "", "a%3Am", "ünï"];
        let mut seen = std::collections::HashSet::new();
        for t in hostile {
            for key in k.for_tenant(t) {
                // The first brace pair is the prefix's: the slot is the app's whatever the id.
                assert!(key.starts_with("xg:{app}:"), "{key}");
                assert_eq!(key.matches('{').count(), 1, "{key}");
                assert_eq!(key.matches('}').count(), 1, "{key}");
            }
            assert!(seen.insert(k.for_tenant(t)[3].clone()), "two ids share a key: {t}");
        }
        assert_ne!(encode("a:m"), encode("a%3Am"), "the escape character is escaped too");
        assert!(KeySpace::new("my{app}").is_err() && KeySpace::new("").is_err() && KeySpace::new("a b").is_err());
    }
}
