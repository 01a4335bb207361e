//! For operators' views (`xeroguard snapshot --all`, `top`): which tenants have state under a prefix. A tenant's
//! state is its header, the field `h:<encoded id>` of the state hash (engine.lua), so the listing is a bounded
//! HSCAN of that one hash (one key: one Cluster slot, and `+hscan` is already in the documented ACL). It reads
//! only, and never runs on a call's path.

use std::collections::HashSet;

use redis::Value;

use super::conn::StoreFailure;
use super::protocol::Protocol;
use crate::pacing::TenantListing;

/// The most HSCAN steps one listing takes (each a round trip under the store's deadline): with [`SCAN_COUNT`],
/// about 500,000 fields of the state hash (headers, permits, results) looked at.
pub(crate) const MAX_SCAN_STEPS: u32 = 1000;
/// The COUNT hint of each step.
const SCAN_COUNT: u32 = 500;
/// The field prefix of a tenant's header.
const HEADER: &[u8] = b"h:";

fn unexpected(what: &str) -> StoreFailure {
    StoreFailure::Refused(format!("unexpected reply from the store to HSCAN: {what}"))
}

/// Up to `max` tenants with a header in the state hash, decoded, in the store's order.
pub fn tenants_with_state(protocol: &Protocol, max: usize) -> Result<TenantListing, StoreFailure> {
    let state = protocol.keys().state();
    let mut listing = TenantListing::default();
    // HSCAN may return a field twice (the hash grew or shrank between steps).
    let mut seen = HashSet::new();
    let mut cursor = "0".to_owned();
    loop {
        if listing.scan_steps == MAX_SCAN_STEPS || listing.tenants.len() >= max {
            return Ok(listing);
        }
        let mut cmd = redis::cmd("HSCAN");
        cmd.arg(&state).arg(&cursor).arg("MATCH").arg("h:*").arg("COUNT").arg(SCAN_COUNT);
        let reply = protocol.store().command(&cmd)?;
        listing.scan_steps += 1;
        let Value::Array(parts) = reply else { return Err(unexpected("not an array")) };
        let [Value::BulkString(next), Value::Array(pairs)] = parts.as_slice() else {
            return Err(unexpected("not a cursor and fields"));
        };
        // Fields and values alternate; a header's value is binary and not needed.
        for field in pairs.iter().step_by(2) {
            let Value::BulkString(field) = field else { return Err(unexpected("a field that is not a string")) };
            // The tenantless scope's header is `h:` (no tenant id encodes to nothing): not a tenant.
            let Some(tenant) = field.strip_prefix(HEADER).filter(|t| !t.is_empty()).and_then(decode) else {
                continue;
            };
            if seen.contains(&tenant) {
                continue;
            }
            if listing.tenants.len() == max {
                return Ok(listing);
            }
            seen.insert(tenant.clone());
            listing.tenants.push(tenant);
        }
        cursor = String::from_utf8(next.clone()).map_err(|_| unexpected("a cursor that is not text"))?;
        if cursor == "0" {
            listing.complete = true;
            return Ok(listing);
        }
    }
}

/// A tenant id from its encoding in key and field names (keys.rs: `%XX` for every byte but `A-Z a-z 0-9 - _ .`);
/// `None` for a name no valid id encodes to.
fn decode(encoded: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::super::keys::KeySpace;
    use super::*;

    #[test]
    fn decode_inverts_the_key_encoding() {
        let keys = KeySpace::new("app").unwrap();
        for tenant in ["4f8a2a1e-0000-4000-8000-000000000001", "a:m", "a%3Am", "x}:t:{y", "ünï", "a b\u{1}"] {
            assert_eq!(decode(keys.tenant_name(tenant).as_bytes()).as_deref(), Some(tenant));
        }
        for broken in ["%", "%4", "%zz", "%FF"] {
            assert_eq!(decode(broken.as_bytes()), None, "{broken}");
        }
    }
}
