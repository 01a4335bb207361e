//! The `xeroguard` command: `classify` prints the §5 JSON of a raw HTTP response (as `curl -i` saves it) and, for
//! scripts, exits with what to do next as the library decides it for the request's method and Idempotency-Key;
//! `demo` shows both jobs on embedded data: a response of each kind classified, then calls paced on a manual clock;
//! `snapshot` shows a tenant's shared pacing state in Redis.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::SystemTime;

use xeroguard::pacing::{Feedback, RedisOptions};
use xeroguard::{
    Action, Backoff, Classification, Clock, Decision, GiveUp, Limiter, Limits, Outcome, Request, RetryPolicy,
    classify_raw, human_duration as human, refusal_in_words, resend,
};

/// Each command: its synopsis and what `xeroguard COMMAND --help` says below it.
const COMMANDS: &[(&str, &str, &str)] = &[
    ("classify", "classify [--pretty] [--exit-code] [--method METHOD] [--[no-]idempotency-key] [FILE]", CLASSIFY_HELP),
    ("demo", "demo", DEMO_HELP),
    ("snapshot", "snapshot --redis URL --prefix PREFIX [--pretty] [TENANT]", SNAPSHOT_HELP),
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
Print a tenant's shared pacing state (windows, permits in flight, blocks, the wait now) as JSON,
from the Redis that an app's workers share; no TENANT: tenantless calls.
  --redis URL        the store's URL, as the workers have it
  --prefix PREFIX    the workers' key prefix
  --pretty           indent the JSON
exit status: 0 done; 1 the store unavailable or output that could not be written; 2 bad usage";

/// `classify --exit-code` for a write without an Idempotency-Key that the server may have carried out.
const CHECK_BEFORE_RESENDING: u8 = 14;

/// `classify` without `--method`: a method the library does not know, which it treats as a write.
const UNKNOWN_METHOD: &str = "";

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

/// Exit codes of `classify --exit-code`, one per action (1 and 2 are taken by errors and usage).
fn action_exit_code(action: Action) -> u8 {
    match action {
        Action::None => 0,
        Action::Retry => 10,
        Action::FixRequest => 11,
        Action::RefreshToken => 12,
        Action::Reauthorize => 13,
    }
}

/// `--exit-code`'s answer: the action's code, except where the library would not resend this request because the
/// server may have carried out a write that has no Idempotency-Key.
fn exit_code(c: &Classification, request: &Request<'_>) -> u8 {
    match resend(request, &Outcome::from(c), 1, &RetryPolicy::default()) {
        Backoff::GiveUp { reason: GiveUp::UnsafeToResend, .. } => CHECK_BEFORE_RESENDING,
        _ => action_exit_code(c.action),
    }
}

/// One response per row of xero-reference §6, as raw HTTP.
const DEMO: &[(&str, &str)] = &[
    (
        "200 OK",
        "HTTP/1.1 200 OK\r\nX-MinLimit-Remaining: 57\r\n\r\n{\"Status\":\"OK\",\"Invoices\":[{\"InvoiceID\":\"1\",\"HasErrors\":false}]}",
    ),
    (
        "200 batch, one element failed",
        "HTTP/1.1 200 OK\r\n\r\n{\"Status\":\"OK\",\"Invoices\":[{\"StatusAttributeString\":\"OK\"},{\"StatusAttributeString\":\"ERROR\",\"ValidationErrors\":[{\"Message\":\"Invoice not of valid status for creation\"}]}]}",
    ),
    (
        "400 ValidationException",
        "HTTP/1.1 400 Bad Request\r\n\r\n{\"ErrorNumber\":10,\"Type\":\"ValidationException\",\"Message\":\"A validation exception occurred\",\"Elements\":[{\"ValidationErrors\":[{\"Message\":\"Email address must be valid\"}]}]}",
    ),
    (
        "400 QueryParseException (XML)",
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<ApiException><ErrorNumber>16</ErrorNumber><Type>QueryParseException</Type><Message>Expression expected</Message></ApiException>",
    ),
    (
        "401 token expired",
        "HTTP/1.1 401 Unauthorized\r\n\r\n{\"Title\":\"Unauthorized\",\"Status\":401,\"Detail\":\"TokenExpired: token expired at 01/01/2001 00:00:00\"}",
    ),
    (
        "401 invalid token",
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error=invalid_token\r\n\r\n{\"title\":\"Unauthorized\",\"status\":401,\"detail\":\"AuthenticationUnsuccessful\"}",
    ),
    (
        "401 missing scope",
        "HTTP/1.1 401 Unauthorized\r\n\r\n{\"Title\":\"Unauthorized\",\"Status\":401,\"Detail\":\"AuthorizationUnsuccessful\"}",
    ),
    (
        "401 OAuth1 nonce used",
        "HTTP/1.1 401 Unauthorized\r\n\r\noauth_problem=nonce_used&oauth_problem_advice=The%20nonce%20value%20has%20already%20been%20used",
    ),
    ("400 token endpoint", "HTTP/1.1 400 Bad Request\r\n\r\n{\"error\":\"invalid_grant\"}"),
    (
        "403 tenant not authorised",
        "HTTP/1.1 403 Forbidden\r\n\r\n{\"title\":\"Forbidden\",\"status\":403,\"detail\":\"AuthenticationUnsuccessful\"}",
    ),
    ("404 not found", "HTTP/1.1 404 Not Found\r\n\r\nThe resource you're looking for cannot be found"),
    (
        "409 duplicate (problem+json)",
        "HTTP/1.1 409 Conflict\r\n\r\n{\"type\":\"duplicate-statement\",\"title\":\"Duplicate Statement Received\",\"status\":409,\"detail\":\"The received statement was marked as a duplicate.\"}",
    ),
    (
        "429 minute limit",
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 17\r\nX-Rate-Limit-Problem: minute\r\nX-MinLimit-Remaining: 0\r\n\r\n",
    ),
    ("429 day limit", "HTTP/1.1 429 Too Many Requests\r\nX-Rate-Limit-Problem: day\r\nX-DayLimit-Remaining: 0\r\n\r\n"),
    (
        "503 OAuth1 rate limit",
        "HTTP/1.1 503 Service Unavailable\r\n\r\noauth_problem=rate%20limit%20exceeded&oauth_problem_advice=please%20wait%20before%20retrying%20the%20xero%20api",
    ),
    ("503 organisation offline", "HTTP/1.1 503 Service Unavailable\r\n\r\nThe Organisation is offline"),
    ("503 maintenance", "HTTP/1.1 503 Service Unavailable\r\n\r\nThe Xero API is currently offline for maintenance"),
    ("500 internal error", "HTTP/1.1 500 Internal Server Error\r\n\r\nAn unhandled error with the Xero API occurred."),
    (
        "501 not implemented",
        "HTTP/1.1 501 Not Implemented\r\n\r\n<ApiException><ErrorNumber>20</ErrorNumber><Type>ApiMethodNotImplementedException</Type><Message>The Api Method called is not implemented</Message></ApiException>",
    ),
    ("504 gateway timeout", "HTTP/1.1 504 Gateway Timeout\r\n\r\n"),
];

/// The widest line the demo prints.
const DEMO_COLUMNS: usize = 100;

fn main() -> ExitCode {
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
        (Some("classify"), rest) => classify_command(rest),
        (Some("demo"), []) => emit(&demo(), ExitCode::SUCCESS),
        (Some("demo"), [extra, ..]) => usage_error(&format!("demo takes no arguments: {extra}")),
        (Some("snapshot"), rest) => snapshot_command(rest),
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

fn classify_command(args: &[String]) -> ExitCode {
    let (mut pretty, mut exit_code_mode, mut path) = (false, false, None);
    let mut request = Request { method: UNKNOWN_METHOD, has_idempotency_key: false };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--pretty" => pretty = true,
            "--exit-code" => exit_code_mode = true,
            "--idempotency-key" => request.has_idempotency_key = true,
            "--no-idempotency-key" => request.has_idempotency_key = false,
            "--method" => match rest.next() {
                Some(method) if is_method(method) => request.method = method,
                _ => return usage_error("--method needs an HTTP method, e.g. --method POST"),
            },
            option if option.starts_with('-') && option != "-" => {
                return usage_error(&format!("classify has no option {option}"));
            }
            file if path.is_none() => path = Some(file),
            _ => return usage_error("classify reads one response: give at most one FILE"),
        }
    }
    let path = path.unwrap_or("-");
    let mut raw = Vec::new();
    let read = if path == "-" {
        io::stdin().lock().read_to_end(&mut raw).map(drop)
    } else {
        std::fs::read(path).map(|bytes| raw = bytes)
    };
    let source = if path == "-" { "standard input" } else { path };
    if let Err(e) = read {
        complain(format_args!("xeroguard: cannot read {source}: {e}"));
        return ExitCode::from(1);
    }
    if raw.trim_ascii().is_empty() {
        let what = if raw.is_empty() { "is empty" } else { "holds only white space" };
        complain(format_args!("xeroguard: {source} {what}: no HTTP response to classify"));
        return ExitCode::from(1);
    }
    let c = match classify_raw(&raw, SystemTime::now()) {
        Ok(c) => c,
        Err(e) => {
            complain(format_args!("xeroguard: {source}: {e}"));
            return ExitCode::from(1);
        }
    };
    let mut json = c.to_json();
    if let Some(object) = json.as_object_mut() {
        // Not a §5 key: placed beside `retryable`, which it qualifies.
        let at = object.keys().position(|key| key == "retryable").map_or(object.len(), |i| i + 1);
        object.shift_insert(at, "may_have_been_processed".to_owned(), c.may_have_been_processed().into());
    }
    let text = if pretty { serde_json::to_string_pretty(&json) } else { serde_json::to_string(&json) };
    let text = text.expect("a serde_json::Value always serializes");
    let code = if exit_code_mode { ExitCode::from(exit_code(&c, &request)) } else { ExitCode::SUCCESS };
    emit(&format!("{text}\n"), code)
}

/// An HTTP method token (RFC 9110 §9.1: visible ASCII, no separators) that is not an option.
fn is_method(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('-')
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `snapshot --redis URL --prefix PREFIX [TENANT]`: reads the shared state without changing it (only the limits are
/// written, and only if the prefix holds none yet).
fn snapshot_command(args: &[String]) -> ExitCode {
    let (mut url, mut prefix, mut tenant, mut pretty) = (None, None, None, false);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--redis" => url = rest.next(),
            "--prefix" => prefix = rest.next(),
            "--pretty" => pretty = true,
            option if option.starts_with('-') => return usage_error(&format!("snapshot has no option {option}")),
            name if tenant.is_none() => tenant = Some(name),
            _ => return usage_error("snapshot shows one tenant"),
        }
    }
    let (Some(url), Some(prefix)) = (url, prefix) else {
        return usage_error("snapshot needs --redis URL and --prefix PREFIX");
    };
    let limiter =
        Limiter::new_redis(Limits::default(), RedisOptions::new(url.as_str(), prefix.as_str()), Clock::Monotonic);
    let snapshot = limiter.and_then(|l| l.snapshot(tenant.unwrap_or(""), l.now()));
    match snapshot {
        Ok(s) => {
            let json = s.to_json();
            let text = if pretty { serde_json::to_string_pretty(&json) } else { serde_json::to_string(&json) };
            emit(&format!("{}\n", text.expect("a serde_json::Value always serializes")), ExitCode::SUCCESS)
        }
        Err(e) => {
            complain(format_args!("xeroguard: {e}"));
            ExitCode::from(1)
        }
    }
}

/// Cuts text to `width` characters, marking the cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

fn demo() -> String {
    let mut out = String::new();
    demo_classification(&mut out);
    out.push('\n');
    demo_pacing(&mut out);
    out
}

/// The first job: one response of each kind, what it is and what to do about it.
fn demo_classification(out: &mut String) {
    out.push_str("1. Classify: what a response means and what to do about it\n\n");
    let _ = writeln!(out, "{:<30} {:<31} {:<13} {:>8}", "response", "category/problem", "action", "wait");
    let _ = writeln!(out, "{}", "-".repeat(85));
    for (label, raw) in DEMO {
        let c = classify_raw(raw.as_bytes(), SystemTime::now()).expect("demo responses are well-formed");
        let wait = c.recommended_wait_ms.map_or("-".to_owned(), human);
        let problem = c.rate_limit_problem.map(|p| p.to_string()).or(c.auth_problem.map(|p| p.to_string()));
        let category = match problem {
            Some(p) => format!("{}/{p}", c.category),
            None => c.category.to_string(),
        };
        let _ = writeln!(out, "{label:<30} {category:<31} {:<13} {wait:>8}", c.action.as_str());
        if let Some(detail) = c.detail() {
            let _ = writeln!(out, "    {}", fit(detail, DEMO_COLUMNS - 4));
        }
    }
}

/// The second job: 70 calls for one tenant, one every half second, on a manual clock with Xero's limits; the
/// refusals say exactly how long to wait and why; then a 429 fed back blocks the tenant for its Retry-After.
fn demo_pacing(out: &mut String) {
    const TENANT: &str = "4f8a2a1e-0000-4000-8000-000000000001";
    const CALLS: u64 = 70;
    const EVERY_MS: u64 = 500;
    let limits = Limits::default();
    let limiter = Limiter::new(limits, Clock::Manual).expect("the default limits are valid");
    let _ = writeln!(
        out,
        "2. Pace: {CALLS} calls for one tenant, one every {}, on a manual clock\n   limits: {} calls per {} \
         (+{} margin), {} per {}, {} in flight\n",
        human(EVERY_MS),
        limits.tenant_minute.limit,
        human(limits.tenant_minute.window_ms),
        human(limits.tenant_minute.margin_ms),
        limits.tenant_day.limit,
        human(limits.tenant_day.window_ms),
        limits.tenant_concurrency,
    );
    let _ = writeln!(out, "{:>12}  {:>5}  decision", "time", "call");
    let _ = writeln!(out, "{}", "-".repeat(72));
    // Acquires at the clock's time and says what happened; a granted call is sent and answered at once.
    let ask = |out: &mut String, call: &str, note: &str| -> Option<u64> {
        let now = limiter.now();
        let decision = limiter.acquire(TENANT, now).expect("a valid tenant id");
        let (text, wait) = match decision {
            Decision::Granted(permit) => {
                limiter.release(permit, now).expect("a permit just granted");
                ("granted".to_owned(), None)
            }
            Decision::Refused(r) => {
                (refusal_in_words(r.reason, r.wait_ms, Some(limits.tenant_concurrency)), Some(r.wait_ms))
            }
        };
        let _ = writeln!(out, "{:>12}  {call:>5}  {text}{note}", human(now));
        wait
    };
    // Calls 2-59 look alike: one summary line stands for them when all were granted.
    let alike = 2..u64::from(limits.tenant_minute.limit);
    let (mut granted, mut first_refusal, mut alike_lines, mut alike_granted) = (0, None, String::new(), 0);
    for call in 1..=CALLS {
        let now = (call - 1) * EVERY_MS;
        limiter.set_now(now).expect("a manual clock moving forward");
        let in_alike = alike.contains(&call);
        let wait = ask(if in_alike { &mut alike_lines } else { &mut *out }, &call.to_string(), "");
        match wait {
            None => {
                granted += 1;
                alike_granted += u64::from(in_alike);
            }
            Some(wait) => _ = first_refusal.get_or_insert((call, now + wait)),
        }
        if call + 1 == alike.end {
            if alike_granted == alike.end - alike.start {
                let times = format!("{}-{}", human((alike.start - 1) * EVERY_MS), human(now));
                let calls = format!("{}-{}", alike.start, call);
                let _ = writeln!(out, "{times:>12}  {calls:>5}  granted, each");
            } else {
                out.push_str(&alike_lines);
            }
        }
    }
    let _ = writeln!(out, "{:>21}{granted} of {CALLS} granted in the first minute (a refused call is not counted)", "");
    if let Some((call, at)) = first_refusal {
        limiter.set_now(at).expect("a manual clock moving forward");
        ask(out, &call.to_string(), "  (sent again after its wait: call 1 has left the window)");
    }
    let answer = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 17\r\nX-Rate-Limit-Problem: minute\r\n\r\n";
    let c = classify_raw(answer.as_bytes(), SystemTime::now()).expect("a well-formed response");
    limiter.observe(TENANT, &Feedback::from(&c), limiter.now()).expect("a valid tenant id");
    let _ = writeln!(out, "{:>12}  {:>5}  a 429 comes back (Retry-After: 17, minute)", human(limiter.now()), "");
    let next = (CALLS + 1).to_string();
    if let Some(wait) = ask(out, &next, "") {
        limiter.advance(wait).expect("a manual clock");
        ask(out, &next, "  (after the block)");
    }
}
