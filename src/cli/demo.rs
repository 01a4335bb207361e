//! `xeroguard demo`: both jobs on embedded data, a response of each kind classified, then calls paced on a manual
//! clock; nothing is sent anywhere.

use std::fmt::Write as _;
use std::time::SystemTime;

use xeroguard::pacing::Feedback;
use xeroguard::{Clock, Decision, Limiter, Limits, classify_raw, human_duration as human, refusal_in_words};

use super::view::fit;

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

pub fn demo() -> String {
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
