//! The `xeroguard` command: `classify` prints the §5 JSON of a raw HTTP response and, for scripts, exits with what to
//! do next; `demo` shows both jobs on embedded data; `snapshot` shows the shared pacing state an app's workers keep
//! in Redis (a tenant, or every tenant with state, busiest first); `top` watches it live.

mod classify;
mod demo;
mod snapshot;
mod store;
mod term;
mod top;
mod view;

use std::fmt::Write as _;
use std::io::{self, Write};
use std::process::ExitCode;

/// Each command: its synopsis and what `xeroguard COMMAND --help` says below it.
const COMMANDS: &[(&str, &str, &str)] = &[
    ("classify", "classify [--pretty] [--exit-code] [--method METHOD] [--[no-]idempotency-key] [FILE]", CLASSIFY_HELP),
    ("demo", "demo", DEMO_HELP),
    ("snapshot", "snapshot --redis URL --prefix PREFIX [--json] [--all [--max-tenants N] | TENANT]", SNAPSHOT_HELP),
    ("top", "top --redis URL --prefix PREFIX [--interval SECONDS] [--max-tenants N] [--once]", TOP_HELP),
];

const CLASSIFY_HELP: &str = "\
Print the classification JSON of a raw HTTP response, as `curl -i` saves it, read from FILE, or
from standard input when FILE is absent or -. When responses follow one another (redirects with
curl -iL, 100 Continue), the last one is classified. Besides the classification's keys the JSON
says may_have_been_processed: whether the server may have carried the request out.
  --pretty              indent the JSON
  --exit-code           exit with what to do next, for shell scripts:
                          0 none, 10 retry, 11 fix_request, 12 refresh_token, 13 reauthorize,
                          14 check before resending: the server may have carried out this write
                             and it has no Idempotency-Key (a 500, 502, 504): never 10 for it
  --method METHOD       the request's method; without it the method is unknown and taken as a
                        write, the safe side (a 500 then exits 14, not 10)
  --idempotency-key     the request carried an Idempotency-Key header (a write may be resent)
  --no-idempotency-key  it carried none (the default)
exit status: 0 done, or with --exit-code the codes above; 1 unreadable or empty input, not an
             HTTP response, or output that could not be written; 2 bad usage";

const DEMO_HELP: &str = "\
Classify a response of each kind, then pace 70 calls for one tenant on a manual clock: both
jobs on embedded data, nothing is sent anywhere.
exit status: 0 done; 1 output that could not be written; 2 bad usage";

const SNAPSHOT_HELP: &str = "\
Print a tenant's shared pacing state (windows, permits in flight, blocks, the wait now) from the
Redis that an app's workers share, for a person: instants in ISO 8601 UTC on the store's clock,
durations in words (in 42 s); no TENANT: tenantless calls. It writes nothing; a prefix with
no stored limits is an error saying so.
  --redis URL          the store's URL, as the workers have it
  --prefix PREFIX      the workers' key prefix
  --json               the library's snapshot JSON instead (times in Unix ms), for machines
  --pretty             indent the JSON (implies --json)
  --all                every tenant with state under the prefix (a bounded HSCAN), busiest first:
                       blocked by the server (a 429, an offline organisation) first, then by the
                       fullest window's share used (calls made and booked against the limit),
                       then by the share of concurrency slots in flight; with --json, each
                       tenant's snapshot with its pressure, and whether the listing is complete
  --max-tenants N      list at most N tenants (default 1000, at most 100000); the listing says
                       when it stopped early (N reached, or 1000 HSCAN steps)
exit status: 0 done; 1 the store unavailable, no stored limits, or output that could not be
written; 2 bad usage";

const TOP_HELP: &str = "\
A live view of an app's shared pacing state in Redis, redrawn every interval: the app's minute
window, then the busiest tenants (sorted as snapshot --all) with their minute and day usage as
bars against their limits, permits in flight, and when and why they wait. It writes nothing; a
prefix with no stored limits is an error saying so. q or Ctrl-C quits.
  --redis URL          the store's URL, as the workers have it
  --prefix PREFIX      the workers' key prefix
  --interval SECONDS   time between readings (default 1; 0.1 to 3600)
  --max-tenants N      look at most N tenants each reading (default 1000, at most 100000)
  --once               print one frame as plain text and exit (no terminal needed)
exit status: 0 done (q or Ctrl-C); 1 the store unavailable, no terminal, or output that could
             not be written; 2 bad usage";

/// The synopsis of every command.
fn synopsis() -> String {
    let mut lines: Vec<String> = COMMANDS.iter().map(|(_, usage, _)| format!("xeroguard {usage}")).collect();
    lines.push("xeroguard --version | --help | COMMAND --help".to_owned());
    format!("usage: {}", lines.join("\n       "))
}

/// `xeroguard --help`: the synopsis, then each command's help, indented under its name.
fn usage() -> String {
    let mut text = synopsis();
    for (name, _, help) in COMMANDS {
        let _ = write!(text, "\n\n{name}");
        for line in help.lines() {
            let _ = write!(text, "\n  {line}");
        }
    }
    text + "\n"
}

/// `xeroguard COMMAND --help`: that command's usage only.
fn command_usage(command: &str) -> Option<String> {
    let (_, usage, help) = COMMANDS.iter().find(|(name, _, _)| *name == command)?;
    Some(format!("usage: xeroguard {usage}\n\n{help}\n"))
}

pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str);
    let rest = args.get(1..).unwrap_or_default();
    if let Some(name) = command
        && rest.iter().any(|arg| arg == "--help" || arg == "-h")
    {
        return match command_usage(name) {
            Some(text) => emit(&text, ExitCode::SUCCESS),
            None => usage_error(&format!("unknown command: {name}")),
        };
    }
    match (command, rest) {
        (Some("classify"), rest) => classify::classify_command(rest),
        (Some("demo"), []) => emit(&demo::demo(), ExitCode::SUCCESS),
        (Some("demo"), [extra, ..]) => usage_error(&format!("demo takes no arguments: {extra}")),
        (Some("snapshot"), rest) => snapshot::snapshot_command(rest),
        (Some("top"), rest) => top::top_command(rest),
        (Some("-V" | "--version"), []) => {
            emit(&format!("xeroguard {}\n", env!("CARGO_PKG_VERSION")), ExitCode::SUCCESS)
        }
        (Some("-h" | "--help" | "help"), []) => emit(&usage(), ExitCode::SUCCESS),
        (Some("help"), [name]) => match command_usage(name) {
            Some(text) => emit(&text, ExitCode::SUCCESS),
            None => usage_error(&format!("no help for {name}: not a command")),
        },
        (Some(other), _) => usage_error(&format!("unknown command or extra arguments: {other} ...")),
        (None, _) => usage_error("no command given"),
    }
}

fn usage_error(why: &str) -> ExitCode {
    complain(format_args!("xeroguard: {why}\n{}\n(xeroguard --help says more)", synopsis()));
    ExitCode::from(2)
}

/// A message on stderr; if even that cannot be written there is no one left to tell.
fn complain(message: std::fmt::Arguments) {
    let _ = writeln!(io::stderr(), "{message}");
}

/// An operation that failed: its error on stderr, exit 1.
fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    complain(format_args!("xeroguard: {e}"));
    ExitCode::from(1)
}

/// JSON for the output: compact or indented, one line's end after it.
fn json_text(json: &serde_json::Value, pretty: bool) -> String {
    let text = if pretty { serde_json::to_string_pretty(json) } else { serde_json::to_string(json) };
    text.expect("a serde_json::Value always serializes") + "\n"
}

/// Writes the output and returns `code`. A reader that went away (a closed pipe, e.g. `| head`) wanted no more: that
/// is quiet and keeps the code. Any other write error (a full disk) is reported and exits 1.
fn emit(text: &str, code: ExitCode) -> ExitCode {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => code,
        Err(e) => {
            complain(format_args!("xeroguard: cannot write the output: {e}"));
            ExitCode::from(1)
        }
    }
}

/// `--redis URL --prefix PREFIX`, `--max-tenants N`: the options `snapshot` and `top` share, taken from `arg` (and
/// its value from `rest`). `Ok(false)` when `arg` is none of them.
fn store_option<'a>(
    arg: &str,
    rest: &mut impl Iterator<Item = &'a String>,
    store: &mut StoreArgs<'a>,
) -> Result<bool, String> {
    match arg {
        "--redis" => store.url = Some(rest.next().ok_or("--redis needs a URL")?),
        "--prefix" => store.prefix = Some(rest.next().ok_or("--prefix needs the workers' key prefix")?),
        "--max-tenants" => {
            let value = rest.next().ok_or("--max-tenants needs a number")?;
            store.max_tenants = value
                .parse()
                .ok()
                .filter(|n| (1..=store::MAX_TENANTS_LIMIT).contains(n))
                .ok_or(format!("--max-tenants takes 1 to {}, not {value}", store::MAX_TENANTS_LIMIT))?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

struct StoreArgs<'a> {
    url: Option<&'a String>,
    prefix: Option<&'a String>,
    max_tenants: usize,
}

impl Default for StoreArgs<'_> {
    fn default() -> Self {
        StoreArgs { url: None, prefix: None, max_tenants: store::DEFAULT_MAX_TENANTS }
    }
}

impl<'a> StoreArgs<'a> {
    /// The store's options from `args`; every other argument goes to `own` (with the rest, for its value), which
    /// says why it is wrong, if it is.
    fn parse(
        args: &'a [String],
        mut own: impl FnMut(&'a str, &mut std::slice::Iter<'a, String>) -> Result<(), String>,
    ) -> Result<Self, String> {
        let mut options = StoreArgs::default();
        let mut rest = args.iter();
        while let Some(arg) = rest.next() {
            if !store_option(arg, &mut rest, &mut options)? {
                own(arg, &mut rest)?;
            }
        }
        Ok(options)
    }

    /// Opens the store, or says why not (a usage error when an option is missing).
    fn open(&self, command: &str) -> Result<store::Store, ExitCode> {
        let (Some(url), Some(prefix)) = (self.url, self.prefix) else {
            return Err(usage_error(&format!("{command} needs --redis URL and --prefix PREFIX")));
        };
        store::Store::open(url, prefix).map_err(|e| fail(&e))
    }
}
