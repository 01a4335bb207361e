//! What `snapshot` and `top` show a person, as pure functions of snapshots (and, for `top`, the screen's size), so
//! the tests compare them with golden text. Instants on the store's clock are Unix milliseconds (the CLI opens the
//! store on the server's clock); they print as ISO 8601 UTC, and durations in the library's words ("in 42 s").

use std::cmp::Reverse;
use std::fmt::Write as _;

use xeroguard::human_duration;
use xeroguard::pacing::{Snapshot, TenantListing, WindowSnapshot};
use xeroguard::refusal_in_words;

/// One look at a prefix: the app's window and blocks (the tenantless scope's snapshot), and the tenants listed with
/// state, busiest first ([`by_pressure`]).
pub struct Reading {
    pub prefix: String,
    /// The tenantless scope: the app-minute window and the app's block, at the store's now.
    pub app: Snapshot,
    pub tenants: Vec<Snapshot>,
    pub listing: TenantListing,
    /// The most tenants listed (`--max-tenants`).
    pub max_tenants: usize,
}

/// How pressed a tenant is, in the order `--all` and `top` sort by (most pressed first): a block the server asked
/// for (a 429's Retry-After, an offline organisation) first; then the highest share of any of its windows used
/// (calls made and booked, against the limit); then the share of its concurrency slots in flight; ties by tenant id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pressure {
    pub blocked: bool,
    /// Per mille of the fullest window.
    pub window_permille: u64,
    pub in_flight_permille: u64,
}

fn permille(used: u64, limit: u32) -> u64 {
    if limit == 0 { 0 } else { used.saturating_mul(1000) / u64::from(limit) }
}

fn used(w: &WindowSnapshot) -> u64 {
    u64::from(w.count) + u64::from(w.booked)
}

pub fn pressure(s: &Snapshot) -> Pressure {
    Pressure {
        blocked: s.blocked_until_ms.is_some(),
        window_permille: permille(used(&s.minute), s.minute.limit).max(permille(used(&s.day), s.day.limit)),
        in_flight_permille: permille(u64::from(s.in_flight), s.concurrency_limit),
    }
}

/// Most pressed first (see [`Pressure`]).
pub fn by_pressure(tenants: &mut [Snapshot]) {
    tenants.sort_by(|a, b| (Reverse(pressure(a)), &a.tenant).cmp(&(Reverse(pressure(b)), &b.tenant)));
}

/// `2026-12-06T21:30:42Z`: a Unix instant in milliseconds, to the second (UTC, proleptic Gregorian calendar).
pub fn iso(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let (days, day_seconds) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (day_seconds / 3600, day_seconds / 60 % 60, day_seconds % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// The date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`, for days that are not negative).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

/// A wait as a person reads it: whole seconds from one second on, rounded up (a countdown never shows 0 s early).
pub fn wait_words(ms: u64) -> String {
    human_duration(whole_seconds(ms))
}

fn whole_seconds(ms: u64) -> u64 {
    if ms >= 1000 { ms.div_ceil(1000) * 1000 } else { ms }
}

/// A tenant id as it may be printed: ids are untrusted, so a control character (an escape sequence would drive the
/// terminal) is shown escaped, `\u{1b}`; the tenantless scope is named.
fn tenant_name(tenant: &str) -> String {
    if tenant.is_empty() {
        return "(tenantless)".to_owned();
    }
    tenant.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

/// `42 of 60 calls in 1 min (70 %): 18 left, 2 booked`, or `42 calls in 1 min (no limit)`.
fn window_line(w: &WindowSnapshot) -> String {
    let span = human_duration(w.window_ms);
    if w.limit == 0 {
        return format!("{} calls in {span} (no limit)", w.count);
    }
    let share = permille(u64::from(w.count), w.limit) / 10;
    let booked = if w.booked == 0 { String::new() } else { format!(", {} booked", w.booked) };
    format!("{} of {} calls in {span} ({share} %): {} left{booked}", w.count, w.limit, w.remaining)
}

fn block_line(until: Option<u64>, reason: Option<xeroguard::Reason>, now_ms: u64) -> String {
    match (until, reason) {
        (Some(until), Some(reason)) => {
            format!("until {} (in {}): {reason}", iso(until), wait_words(until.saturating_sub(now_ms)))
        }
        _ => "no".to_owned(),
    }
}

/// What a call would be told now: `now`, or the refusal in words.
fn next_call(s: &Snapshot) -> String {
    match s.wait_reason {
        Some(reason) if s.wait_ms > 0 => refusal_in_words(reason, whole_seconds(s.wait_ms), Some(s.concurrency_limit)),
        _ => "now".to_owned(),
    }
}

/// `xeroguard snapshot` for one tenant.
pub fn tenant_text(s: &Snapshot, prefix: &str) -> String {
    let flight = match s.concurrency_limit {
        0 => format!("{} (no limit)", s.in_flight),
        limit => format!("{} of {limit}", s.in_flight),
    };
    let rows = [
        ("tenant", tenant_name(&s.tenant)),
        ("prefix", prefix.to_owned()),
        ("at", format!("{} (the store's clock)", iso(s.now_ms))),
        ("minute", window_line(&s.minute)),
        ("day", window_line(&s.day)),
        ("app minute", window_line(&s.app_minute)),
        ("in flight", flight),
        ("blocked", block_line(s.blocked_until_ms, s.block_reason, s.now_ms)),
        ("app blocked", block_line(s.app_blocked_until_ms, s.app_block_reason, s.now_ms)),
        ("next call", next_call(s)),
    ];
    rows.iter().map(|(name, value)| format!("{name:<12} {value}\n")).collect()
}

/// How far the listing went, for the line under a table.
fn listing_note(r: &Reading) -> String {
    let listed = r.listing.tenants.len();
    let noun = if listed == 1 { "tenant" } else { "tenants" };
    if r.listing.complete {
        format!("{listed} {noun} with state")
    } else if listed >= r.max_tenants {
        format!("{listed} {noun} with state listed, the most asked for (--max-tenants): others may have state")
    } else {
        format!(
            "{listed} {noun} with state listed; the scan stopped after {} steps: others may have state",
            r.listing.scan_steps
        )
    }
}

fn app_line(app: &Snapshot) -> String {
    let blocked = block_words(app.app_blocked_until_ms, app.app_block_reason, app.now_ms);
    format!("{}; {}", window_line(&app.app_minute), blocked.as_deref().unwrap_or("not blocked"))
}

/// A block, short, the reason and the wait first (they survive a cut): `retry_after: blocked 42 s, to 21:30:42Z`.
fn block_words(until: Option<u64>, reason: Option<xeroguard::Reason>, now_ms: u64) -> Option<String> {
    let (until, reason) = until.zip(reason)?;
    Some(format!("{reason}: blocked {}, to {}", wait_words(until.saturating_sub(now_ms)), clock_time(until)))
}

/// `count/limit` of a window (`count` alone without a limit).
fn fraction(w: &WindowSnapshot) -> String {
    if w.limit == 0 { w.count.to_string() } else { format!("{}/{}", w.count, w.limit) }
}

/// When a tenant's next call may go and why, short: `retry_after: blocked 42 s, to 21:30:42Z`, `minute: in 12 s`,
/// or `now`.
fn short_wait(s: &Snapshot) -> String {
    if let Some(blocked) = block_words(s.blocked_until_ms, s.block_reason, s.now_ms) {
        return blocked;
    }
    match s.wait_reason {
        Some(reason) if s.wait_ms > 0 => format!("{reason}: in {}", wait_words(s.wait_ms)),
        _ => "now".to_owned(),
    }
}

/// `21:30:42Z`: the time of day of an instant (the header carries the date).
fn clock_time(unix_ms: u64) -> String {
    iso(unix_ms)[11..].to_owned()
}

/// Cuts text to `width` characters, marking the cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        cut.push('…');
    }
    cut
}

/// A tenant id cut to `width` in the middle, so that ids sharing a beginning (GUIDs) stay apart: the start, `…`,
/// and the last 8 characters.
fn fit_id(id: &str, width: usize) -> String {
    let len = id.chars().count();
    if len <= width || width < 12 {
        return fit(id, width);
    }
    let tail = 8;
    let head: String = id.chars().take(width - tail - 1).collect();
    let end: String = id.chars().skip(len - tail).collect();
    format!("{head}…{end}")
}

fn pad(text: &str, width: usize) -> String {
    let text = fit(text, width);
    let len = text.chars().count();
    text + &" ".repeat(width - len)
}

/// `xeroguard snapshot --all`: every tenant listed, busiest first, one line each.
pub fn all_text(r: &Reading) -> String {
    let mut out = format!("prefix {} at {} (the store's clock)\n", r.prefix, iso(r.app.now_ms));
    let _ = writeln!(out, "app minute  {}", app_line(&r.app));
    let _ = writeln!(out, "{}, busiest first\n", listing_note(r));
    if r.tenants.is_empty() {
        return out;
    }
    let id_width = r.tenants.iter().map(|s| tenant_name(&s.tenant).chars().count()).max().unwrap_or(0).clamp(6, 40);
    let _ = writeln!(
        out,
        "{} {:>8}  {:<11}  {:<11}  {:<9}  next call",
        pad("tenant", id_width),
        "pressure",
        "minute",
        "day",
        "in flight"
    );
    for s in &r.tenants {
        let p = pressure(s);
        let _ = writeln!(
            out,
            "{} {:>6} %  {:<11}  {:<11}  {:<9}  {}",
            pad(&fit_id(&tenant_name(&s.tenant), id_width), id_width),
            p.window_permille / 10,
            fraction(&s.minute),
            fraction(&s.day),
            in_flight(s),
            short_wait(s)
        );
    }
    out
}

/// `in flight/limit` (alone without a limit).
fn in_flight(s: &Snapshot) -> String {
    if s.concurrency_limit == 0 { s.in_flight.to_string() } else { format!("{}/{}", s.in_flight, s.concurrency_limit) }
}

/// The terminal's size, for [`top_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    pub width: usize,
    pub height: usize,
}

/// A bar of `width` cells, filled in proportion to `count` of `limit` (full at or over the limit).
pub fn bar(count: u64, limit: u32, width: usize) -> String {
    let filled = if limit == 0 {
        0
    } else {
        usize::try_from(count.min(u64::from(limit)) * width as u64 / u64::from(limit)).unwrap_or(width)
    };
    // A window with calls in it never looks empty.
    let filled = if count > 0 && limit > 0 { filled.max(1) } else { filled };
    "█".repeat(filled) + &"░".repeat(width - filled)
}

/// Lines of the frame before the tenants' table.
const TOP_HEADER_LINES: usize = 5;
/// The narrowest screen that gets bars; narrower ones show the numbers only.
const BARS_FROM_WIDTH: usize = 72;

/// One frame of `xeroguard top`: a header with the time and the app window, then the busiest tenants (as many as
/// the screen has lines for), each with its minute and day usage as bars against their limits, its permits in
/// flight, and when and why it waits. Lines are cut to `screen.width`.
pub fn top_frame(r: &Reading, interval_ms: u64, screen: Screen) -> String {
    let width = screen.width.max(20);
    let mut lines = vec![
        format!(
            "xeroguard top · prefix {} · {} · every {} · q quits",
            r.prefix,
            iso(r.app.now_ms),
            human_duration(interval_ms)
        ),
        String::new(),
    ];
    let app = &r.app.app_minute;
    let app_bar = if width >= BARS_FROM_WIDTH {
        format!("{}  ", bar(u64::from(app.count), app.limit, 20))
    } else {
        String::new()
    };
    let app_block = match (r.app.app_blocked_until_ms, r.app.app_block_reason) {
        (Some(until), Some(reason)) => {
            format!(
                "blocked until {} ({}): {reason}",
                clock_time(until),
                wait_words(until.saturating_sub(r.app.now_ms))
            )
        }
        _ => "not blocked".to_owned(),
    };
    lines.push(format!("app minute  {app_bar}{}  {}  {app_block}", fraction(app), share_text(app)));
    lines.push(format!("{}, busiest first", listing_note(r)));
    lines.push(String::new());
    let rows = screen.height.saturating_sub(TOP_HEADER_LINES + 1);
    if !r.tenants.is_empty() && rows > 0 {
        lines.extend(tenant_table(&r.tenants[..r.tenants.len().min(rows)], width));
    }
    let mut frame = String::new();
    for line in lines {
        let _ = writeln!(frame, "{}", fit(line.trim_end(), width));
    }
    frame
}

fn share_text(w: &WindowSnapshot) -> String {
    if w.limit == 0 { "no limit".to_owned() } else { format!("{:>3} %", permille(u64::from(w.count), w.limit) / 10) }
}

/// The table of `top`: the header line and one line per tenant.
fn tenant_table(tenants: &[Snapshot], width: usize) -> Vec<String> {
    let id_width = tenants.iter().map(|s| tenant_name(&s.tenant).chars().count()).max().unwrap_or(0).clamp(6, 24);
    let numbers = |pick: fn(&Snapshot) -> &WindowSnapshot| {
        tenants.iter().map(|s| fraction(pick(s)).chars().count()).max().unwrap_or(0)
    };
    let (minute_digits, day_digits) = (numbers(|s| &s.minute), numbers(|s| &s.day));
    // The wait column as wide as its longest text (up to a block's 40-odd characters): bars take what is left.
    let wait_width = tenants.iter().map(|s| short_wait(s).chars().count()).max().unwrap_or(0).clamp(9, 44);
    // tenant, two windows (bar, space, numbers), in flight, the wait, with two spaces between columns.
    let fixed = id_width + 2 + minute_digits + 2 + day_digits + 2 + 9 + 2 + wait_width;
    let bar_width = if width >= BARS_FROM_WIDTH { (width.saturating_sub(fixed + 2) / 2).clamp(5, 30) } else { 0 };
    let cell = |w: &WindowSnapshot, digits: usize| {
        let numbers = format!("{:>digits$}", fraction(w));
        if bar_width == 0 { numbers } else { format!("{} {numbers}", bar(u64::from(w.count), w.limit, bar_width)) }
    };
    let bars = if bar_width == 0 { 0 } else { bar_width + 1 };
    let (minute_width, day_width) = ((bars + minute_digits).max("minute".len()), (bars + day_digits).max("day".len()));
    let mut lines = vec![format!(
        "{}  {}  {}  {:<9}  next call",
        pad("tenant", id_width),
        pad("minute", minute_width),
        pad("day", day_width),
        "in flight"
    )];
    for s in tenants {
        lines.push(format!(
            "{}  {:>minute_width$}  {:>day_width$}  {:<9}  {}",
            pad(&fit_id(&tenant_name(&s.tenant), id_width), id_width),
            cell(&s.minute, minute_digits),
            cell(&s.day, day_digits),
            in_flight(s),
            short_wait(s)
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use xeroguard::Reason;

    /// 2026-12-06T21:30:00Z.
    const NOW: u64 = 1_796_592_600_000;

    fn window(limit: u32, window_ms: u64, count: u32, booked: u32) -> WindowSnapshot {
        WindowSnapshot { limit, window_ms, count, remaining: limit.saturating_sub(count + booked), booked }
    }

    fn tenant(id: &str, minute: u32, day: u32, in_flight: u32) -> Snapshot {
        Snapshot {
            tenant: id.to_owned(),
            now_ms: NOW,
            minute: window(60, 60_000, minute, 0),
            day: window(5000, 86_400_000, day, 0),
            app_minute: window(10_000, 60_000, 2_480, 0),
            in_flight,
            concurrency_limit: 5,
            blocked_until_ms: None,
            block_reason: None,
            app_blocked_until_ms: None,
            app_block_reason: None,
            wait_ms: 0,
            wait_reason: None,
            tenants_tracked: 0,
        }
    }

    /// A prefix with one tenant of each kind an operator looks for, in no order.
    fn reading(complete: bool) -> Reading {
        let mut tenants = vec![
            tenant("4f8a2a1e-0000-4000-8000-000000000006", 3, 210, 0),
            {
                let mut t = tenant("4f8a2a1e-0000-4000-8000-000000000004", 17, 1_210, 0);
                (t.blocked_until_ms, t.block_reason) = (Some(NOW + 41_300), Some(Reason::RetryAfter));
                (t.wait_ms, t.wait_reason) = (41_300, Some(Reason::RetryAfter));
                t
            },
            {
                let mut t = tenant("4f8a2a1e-0000-4000-8000-000000000001", 60, 2_950, 3);
                (t.wait_ms, t.wait_reason) = (12_400, Some(Reason::Minute));
                t
            },
            tenant("4f8a2a1e-0000-4000-8000-000000000002", 44, 4_410, 2),
            {
                let mut t = tenant("4f8a2a1e-0000-4000-8000-000000000003", 9, 87, 5);
                (t.wait_ms, t.wait_reason) = (350, Some(Reason::Concurrency));
                t
            },
            tenant("demo company (uk)", 1, 1, 0),
        ];
        by_pressure(&mut tenants);
        let app = tenant("", 0, 0, 0);
        let listing = TenantListing {
            tenants: tenants.iter().map(|t| t.tenant.clone()).collect(),
            complete,
            scan_steps: if complete { 1 } else { 1000 },
        };
        Reading { prefix: "acme".to_owned(), app, tenants, listing, max_tenants: 1000 }
    }

    /// Compares `text` with the golden file `tests/golden/NAME`; `XEROGUARD_UPDATE_GOLDEN=1` rewrites it.
    fn golden(name: &str, text: &str) {
        let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("XEROGUARD_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(text, expected, "{name} changed (XEROGUARD_UPDATE_GOLDEN=1 rewrites it):\n{text}");
    }

    #[test]
    fn the_readme_shows_the_golden_views() {
        let readme = std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
        for name in ["top-120x20.txt", "snapshot-all.txt", "snapshot-tenant.txt"] {
            let golden = std::fs::read_to_string(format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR")));
            let block = format!("```text\n{}```\n", golden.unwrap());
            assert!(readme.contains(&block), "README.md's copy of tests/golden/{name} is stale");
        }
    }

    #[test]
    fn iso_dates_across_leap_years_and_the_epoch() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(NOW + 999), "2026-12-06T21:30:00Z");
        assert_eq!(iso(951_868_799_000), "2000-02-29T23:59:59Z");
        assert_eq!(iso(951_868_800_000), "2000-03-01T00:00:00Z");
        assert_eq!(iso(4_107_542_400_000), "2100-03-01T00:00:00Z", "2100 is not a leap year");
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(wait_words(41_001), "42 s");
        assert_eq!(wait_words(41_000), "41 s");
        assert_eq!(wait_words(350), "350 ms");
        assert_eq!(wait_words(3_599_001), "1 h");
    }

    #[test]
    fn busiest_first_blocked_then_fullest_window_then_in_flight() {
        let order: Vec<String> =
            reading(true).tenants.iter().map(|t| t.tenant[t.tenant.len() - 2..].to_owned()).collect();
        assert_eq!(order, ["04", "01", "02", "03", "06", "k)"]);
        // The day's share counts as much as the minute's: 4,410 of 5,000 is fuller than 44 of 60.
        assert!(pressure(&reading(true).tenants[2]).window_permille == 882);
        // Equal windows: more slots in flight first.
        let mut pair = [tenant("b", 10, 10, 1), tenant("a", 10, 10, 4)];
        by_pressure(&mut pair);
        assert_eq!(pair[0].tenant, "a");
    }

    #[test]
    fn bars_fill_in_proportion_and_never_hide_a_call() {
        assert_eq!(bar(30, 60, 10), "█████░░░░░");
        assert_eq!(bar(90, 60, 4), "████", "over the limit: full");
        assert_eq!(bar(1, 5000, 4), "█░░░", "a call is never invisible");
        assert_eq!(bar(0, 60, 3), "░░░");
        assert_eq!(bar(5, 0, 3), "░░░", "no limit: nothing to fill");
    }

    #[test]
    fn control_characters_in_ids_never_reach_the_terminal() {
        let mut r = reading(true);
        r.tenants[0].tenant = "evil\u{1b}[2J\u{7}".to_owned();
        for text in
            [all_text(&r), top_frame(&r, 1000, Screen { width: 120, height: 20 }), tenant_text(&r.tenants[0], "p")]
        {
            assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
            assert!(text.contains("evil\\u{1b}[2J\\u{7}"), "{text}");
        }
    }

    #[test]
    fn long_ids_are_cut_in_the_middle() {
        assert_eq!(fit_id("4f8a2a1e-0000-4000-8000-000000000004", 24), "4f8a2a1e-0000-4…00000004");
        assert_eq!(fit_id("short", 24), "short");
    }

    #[test]
    fn snapshot_of_one_tenant_for_a_person() {
        let r = reading(true);
        golden("snapshot-tenant.txt", &tenant_text(&r.tenants[0], "acme"));
    }

    #[test]
    fn snapshot_all_lists_tenants_busiest_first() {
        golden("snapshot-all.txt", &all_text(&reading(true)));
        let partial = all_text(&reading(false));
        assert!(partial.contains("the scan stopped after 1000 steps: others may have state"), "{partial}");
    }

    #[test]
    fn top_frames_fit_the_screen() {
        let r = reading(true);
        let wide = top_frame(&r, 1000, Screen { width: 120, height: 20 });
        golden("top-120x20.txt", &wide);
        let narrow = top_frame(&r, 1000, Screen { width: 64, height: 9 });
        golden("top-64x9.txt", &narrow);
        for (frame, screen) in [(&wide, (120, 20)), (&narrow, (64, 9))] {
            assert!(frame.lines().all(|l| l.chars().count() <= screen.0), "{frame}");
            assert!(frame.lines().count() <= screen.1, "{frame}");
        }
        assert!(!narrow.contains('█'), "no bars on a narrow screen: {narrow}");
        // A tiny screen still gets a frame, never a panic.
        let tiny = top_frame(&r, 1000, Screen { width: 1, height: 1 });
        assert!(!tiny.is_empty());
    }
}
