//! `xeroguard top`: a live view of an app's shared pacing state, redrawn every interval until q or Ctrl-C. Each
//! frame is [`view::top_frame`] of one reading (pure, tested on fixed snapshots); this module only reads, draws and
//! waits for keys.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::term::Raw;
use super::view::{self, Screen};
use super::{StoreArgs, emit, fail, usage_error};

/// The shortest and longest `--interval`, in ms.
const INTERVALS_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
/// `--once` prints a frame this wide and tall (no terminal to ask).
const ONCE_SCREEN: Screen = Screen { width: 100, height: 40 };

pub fn top_command(args: &[String]) -> ExitCode {
    let (mut interval_ms, mut once) = (1000, false);
    let parsed = StoreArgs::parse(args, |arg, rest| {
        match arg {
            "--interval" => {
                interval_ms = rest.next().and_then(|v| seconds_ms(v)).ok_or("--interval takes seconds, 0.1 to 3600")?;
            }
            "--once" => once = true,
            other => return Err(format!("top has no argument {other}")),
        }
        Ok(())
    });
    let options = match parsed {
        Ok(options) => options,
        Err(why) => return usage_error(&why),
    };
    let store = match options.open("top") {
        Ok(s) => s,
        Err(code) => return code,
    };
    let read = || store.read(options.max_tenants);
    if once {
        return match read() {
            Ok(r) => emit(&view::top_frame(&r, interval_ms, ONCE_SCREEN), ExitCode::SUCCESS),
            Err(e) => fail(&e),
        };
    }
    let raw = match Raw::enter() {
        Ok(raw) => raw,
        Err(e) => return fail(&e),
    };
    loop {
        let started = Instant::now();
        let (width, height) = raw.size();
        let frame = match read() {
            Ok(r) => view::top_frame(&r, interval_ms, Screen { width, height }),
            // The store may come back: say so on the screen and keep trying.
            Err(e) => format!("xeroguard top · prefix {} · {e}\n(trying again; q quits)\n", store.prefix()),
        };
        if let Err(e) = raw.draw(&frame) {
            drop(raw);
            return fail(&e);
        }
        let left = Duration::from_millis(interval_ms).saturating_sub(started.elapsed());
        match raw.wait_for_quit(left) {
            Ok(false) => {}
            Ok(true) => return ExitCode::SUCCESS,
            Err(e) => {
                drop(raw);
                return fail(&e);
            }
        }
    }
}

/// `1`, `0.5`, `2.25` seconds as ms, within [`INTERVALS_MS`].
fn seconds_ms(text: &str) -> Option<u64> {
    let seconds: f64 = text.parse().ok().filter(|s: &f64| s.is_finite())?;
    let ms = (seconds * 1000.0).round();
    (0.0..=3_600_000.0).contains(&ms).then_some(ms as u64).filter(|ms| INTERVALS_MS.contains(ms))
}
