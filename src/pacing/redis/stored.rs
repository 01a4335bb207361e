//! The limits stored for a key prefix, as a person reads them: what a limiter whose limits differ from them is told.

use crate::pacing::config::{Limits, WindowLimit};

fn window(w: WindowLimit) -> String {
    if w.limit == 0 {
        return "off".into();
    }
    format!("{} per {} ms (+{} ms margin)", w.limit, w.window_ms, w.margin_ms)
}

/// The stored fields of `l`, one phrase each.
fn phrases(l: &Limits) -> [(&'static str, String); 5] {
    [
        ("tenant minute", window(l.tenant_minute)),
        ("tenant day", window(l.tenant_day)),
        ("tenant concurrency", l.tenant_concurrency.to_string()),
        ("app minute", window(l.app_minute)),
        ("permit timeout", format!("{} ms", l.permit_timeout_ms)),
    ]
}

/// The message of a limiter whose limits differ from the stored ones: every field that differs, given and stored.
pub fn differ(given: &Limits, stored: &Limits) -> String {
    let differences: Vec<String> = phrases(given)
        .into_iter()
        .zip(phrases(stored))
        .filter(|((_, g), (_, s))| g != s)
        .map(|((name, g), (_, s))| format!("{name}: given {g}, stored {s}"))
        .collect();
    format!(
        "the limits given differ from those stored for this key prefix ({}); set replace_limits to store the given \
         ones for every process, or adopt_stored_limits to pace by the stored ones",
        differences.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_difference_with_both_values() {
        let stored = Limits::default();
        let given = Limits { tenant_minute: WindowLimit::new(5, 60_000, 500), ..stored };
        let text = differ(&given, &stored);
        assert!(
            text.contains("tenant minute: given 5 per 60000 ms (+500 ms margin), stored 60 per 60000 ms"),
            "{text}"
        );
        assert!(!text.contains("tenant day"), "only what differs: {text}");
    }
}
