//! The response headers that matter, matched case-insensitively with values trimmed (xero-reference §3, §5).

use std::time::{Duration, SystemTime};

/// The most any Retry-After is believed: a day (xero-reference §5).
pub const RETRY_AFTER_CAP_MS: u64 = 86_400_000;

#[derive(Debug, Default)]
pub(crate) struct HeaderFacts<'a> {
    pub retry_after: Option<&'a str>,
    pub date: Option<&'a str>,
    pub rate_limit_problem: Option<&'a str>,
    pub minute_remaining: Option<u32>,
    pub day_remaining: Option<u32>,
    pub app_minute_remaining: Option<u32>,
    pub correlation_id: Option<&'a str>,
    pub www_authenticate: Option<&'a str>,
}

impl<'a> HeaderFacts<'a> {
    /// Reads the headers once. When a header repeats, its first occurrence wins.
    pub fn read(headers: &[(&'a str, &'a str)]) -> Self {
        let mut facts = HeaderFacts::default();
        for &(name, value) in headers {
            let name = name.trim();
            let value = value.trim();
            let slot_text = |slot: &mut Option<&'a str>| {
                if slot.is_none() {
                    *slot = Some(value);
                }
            };
            let slot_count = |slot: &mut Option<u32>| {
                if slot.is_none() {
                    *slot = parse_count(value);
                }
            };
            if name.eq_ignore_ascii_case("retry-after") {
                slot_text(&mut facts.retry_after);
            } else if name.eq_ignore_ascii_case("date") {
                slot_text(&mut facts.date);
            } else if name.eq_ignore_ascii_case("x-rate-limit-problem") {
                slot_text(&mut facts.rate_limit_problem);
            } else if name.eq_ignore_ascii_case("x-minlimit-remaining") {
                slot_count(&mut facts.minute_remaining);
            } else if name.eq_ignore_ascii_case("x-daylimit-remaining") {
                slot_count(&mut facts.day_remaining);
            } else if name.eq_ignore_ascii_case("x-appminlimit-remaining") {
                slot_count(&mut facts.app_minute_remaining);
            } else if name.eq_ignore_ascii_case("xero-correlation-id") {
                slot_text(&mut facts.correlation_id);
            } else if name.eq_ignore_ascii_case("www-authenticate") {
                slot_text(&mut facts.www_authenticate);
            }
        }
        facts
    }

    /// `Retry-After` in milliseconds: delta-seconds or an HTTP-date measured against the `Date` header (else `now`).
    /// Capped at a day. Garbage, negative values and dates before the reference time give `None`.
    pub fn retry_after_ms(&self, now: SystemTime) -> Option<u64> {
        let value = self.retry_after.filter(|v| !v.is_empty())?;
        if value.bytes().all(|b| b.is_ascii_digit()) {
            // All digits: a number too large for u64 is still "a long time", so it caps rather than fails.
            let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
            return Some(seconds.saturating_mul(1000).min(RETRY_AFTER_CAP_MS));
        }
        let at = httpdate::parse_http_date(value).ok()?;
        let reference = self.date.and_then(|d| httpdate::parse_http_date(d).ok()).unwrap_or(now);
        let wait = at.duration_since(reference).ok()?;
        Some(duration_ms(wait).min(RETRY_AFTER_CAP_MS))
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A remaining-count header: a non-negative integer, else `None`.
fn parse_count(value: &str) -> Option<u32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(h: &'a [(&'a str, &'a str)]) -> HeaderFacts<'a> {
        HeaderFacts::read(h)
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cases: &[(&str, Option<u64>)] = &[
            ("17", Some(17_000)),
            (" 0 ", Some(0)),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
            ("99999999999999999999999999", Some(RETRY_AFTER_CAP_MS)),
        ];
        for &(value, want) in cases {
            let h = [("Retry-After", value)];
            assert_eq!(facts(&h).retry_after_ms(now), want, "{value:?}");
        }
    }

    #[test]
    fn retry_after_date_against_date_header_then_now() {
        let h = [("date", "Wed, 21 Oct 2026 07:28:00 GMT"), ("retry-after", "Wed, 21 Oct 2026 07:28:30 GMT")];
        assert_eq!(facts(&h).retry_after_ms(SystemTime::UNIX_EPOCH), Some(30_000));
        let h = [("retry-after", "Wed, 21 Oct 2026 07:28:30 GMT")];
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:10 GMT").unwrap();
        assert_eq!(facts(&h).retry_after_ms(now), Some(20_000));
        let later = httpdate::parse_http_date("Wed, 21 Oct 2026 08:00:00 GMT").unwrap();
        assert_eq!(facts(&h).retry_after_ms(later), None, "a date in the past is negative");
    }

    #[test]
    fn counts_reject_garbage_and_first_wins() {
        let h = [
            ("X-MinLimit-Remaining", "abc"),
            ("x-daylimit-remaining", "-1"),
            ("X-APPMINLIMIT-REMAINING", " 12 "),
            ("x-appminlimit-remaining", "3"),
        ];
        let f = facts(&h);
        assert_eq!((f.minute_remaining, f.day_remaining, f.app_minute_remaining), (None, None, Some(12)));
    }
}
