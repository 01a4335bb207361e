//! `xeroguard classify`: the §5 JSON of a raw HTTP response (as `curl -i` saves it) and, for scripts, an exit code
//! saying what to do next as the library decides it for the request's method and Idempotency-Key.

use std::io::{self, Read};
use std::process::ExitCode;
use std::time::SystemTime;

use xeroguard::{Action, Backoff, Classification, GiveUp, Outcome, Request, RetryPolicy, classify_raw, resend};

use super::{complain, emit, json_text, usage_error};

/// `classify --exit-code` for a write without an Idempotency-Key that the server may have carried out.
const CHECK_BEFORE_RESENDING: u8 = 14;

/// `classify` without `--method`: a method the library does not know, which it treats as a write.
const UNKNOWN_METHOD: &str = "";

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

pub fn classify_command(args: &[String]) -> ExitCode {
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
    let code = if exit_code_mode { ExitCode::from(exit_code(&c, &request)) } else { ExitCode::SUCCESS };
    emit(&json_text(&json, pretty), code)
}

/// An HTTP method token (RFC 9110 §9.1: visible ASCII, no separators) that is not an option.
fn is_method(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('-')
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
