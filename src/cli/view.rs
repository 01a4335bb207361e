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
    human_duration(if ms >= 1000 { ms.div_ceil(1000) * 1000 } else { ms })
}

fn tenant_name(tenant: &str) -> &str {
    if tenant.is_empty() { "(tenantless)" } else { tenant }
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
        Some(reason) if s.wait_ms > 0 => refusal_in_words(reason, s.wait_ms, Some(s.concurrency_limit)),
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
        ("tenant", tenant_name(&s.tenant).to_owned()),
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
    let blocked = match (app.app_blocked_until_ms, app.app_block_reason) {
        (Some(until), Some(reason)) => {
            format!("blocked {} ({reason})", wait_words(until.saturating_sub(app.now_ms)))
        }
        _ => "not blocked".to_owned(),
    };
    format!("{}, {blocked}", window_line(&app.app_minute))
}

/// `count/limit` of a window (`count` alone without a limit).
fn fraction(w: &WindowSnapshot) -> String {
    if w.limit == 0 { w.count.to_string() } else { format!("{}/{}", w.count, w.limit) }
}

/// Why a tenant waits and for how long, short: `blocked 42 s: retry_after`, `12 s: minute`, or `now`.
fn short_wait(s: &Snapshot) -> String {
    match (s.blocked_until_ms, s.block_reason) {
        (Some(until), Some(reason)) => {
            format!("blocked until {} ({}): {reason}", clock_time(until), wait_words(until.saturating_sub(s.now_ms)))
        }
        _ => match s.wait_reason {
            Some(reason) if s.wait_ms > 0 => format!("in {}: {reason}", wait_words(s.wait_ms)),
            _ => "now".to_owned(),
        },
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
    let id_width = r.tenants.iter().map(|s| s.tenant.chars().count()).max().unwrap_or(0).clamp(6, 40);
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
            pad(&s.tenant, id_width),
            p.window_permille / 10,
            fraction(&s.minute),
            fraction(&s.day),
            format!("{}/{}", s.in_flight, s.concurrency_limit),
            short_wait(s)
        );
    }
    out
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
    let id_width = tenants.iter().map(|s| s.tenant.chars().count()).max().unwrap_or(0).clamp(6, 24);
    let numbers = |pick: fn(&Snapshot) -> &WindowSnapshot| {
        tenants.iter().map(|s| fraction(pick(s)).chars().count()).max().unwrap_or(0)
    };
    let (minute_digits, day_digits) = (numbers(|s| &s.minute), numbers(|s| &s.day));
    // tenant, two windows (bar, space, numbers), in flight, and at least 24 columns for the wait.
    let fixed = id_width + 2 + minute_digits + 2 + day_digits + 2 + 9 + 2 + 24;
    let bar_width = if width >= BARS_FROM_WIDTH { (width.saturating_sub(fixed + 2) / 2).clamp(5, 30) } else { 0 };
    let cell = |w: &WindowSnapshot, digits: usize| {
        let numbers = format!("{:>digits$}", fraction(w));
        if bar_width == 0 { numbers } else { format!("{} {numbers}", bar(u64::from(w.count), w.limit, bar_width)) }
    };
    let minute_width = if bar_width == 0 { minute_digits } else { bar_width + 1 + minute_digits };
    let day_width = if bar_width == 0 { day_digits } else { bar_width + 1 + day_digits };
    let mut lines = vec![format!(
        "{}  {}  {}  {:<9}  next call",
        pad("tenant", id_width),
        pad("minute", minute_width),
        pad("day", day_width),
        "in flight"
    )];
    for s in tenants {
        lines.push(format!(
            "{}  {}  {}  {:<9}  {}",
            pad(&s.tenant, id_width),
            cell(&s.minute, minute_digits),
            cell(&s.day, day_digits),
            format!("{}/{}", s.in_flight, s.concurrency_limit),
            short_wait(s)
        ));
    }
    lines
}
