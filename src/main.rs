//! The `xeroguard` command: `classify FILE|-` prints the §5 JSON of a raw HTTP response (as `curl -i` saves it);
//! `demo` classifies one response for each row of the decision table and prints a readable table.

use std::io::Read;
use std::process::ExitCode;
use std::time::SystemTime;

use xeroguard::classify_raw;

const USAGE: &str = "usage: xeroguard classify FILE|-   print the classification JSON of a raw HTTP response (curl -i)
       xeroguard demo              classify one response of each kind and print a table";

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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["classify", path] => classify_command(path),
        ["demo"] => {
            demo();
            ExitCode::SUCCESS
        }
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn classify_command(path: &str) -> ExitCode {
    let mut raw = Vec::new();
    let read = if path == "-" {
        std::io::stdin().read_to_end(&mut raw).map(drop)
    } else {
        std::fs::read(path).map(|bytes| raw = bytes)
    };
    if let Err(e) = read {
        eprintln!("xeroguard: cannot read {path}: {e}");
        return ExitCode::from(1);
    }
    match classify_raw(&raw, SystemTime::now()) {
        Ok(c) => {
            println!("{}", c.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xeroguard: {path}: {e}");
            ExitCode::from(1)
        }
    }
}

fn demo() {
    println!("{:<32} {:>6}  {:<32} {:<14} {:>10}  detail", "response", "status", "category", "action", "wait");
    println!("{}", "-".repeat(130));
    for (label, raw) in DEMO {
        let c = classify_raw(raw.as_bytes(), SystemTime::now()).expect("demo responses are well-formed");
        let wait = c.recommended_wait_ms.map_or("-".to_owned(), |ms| format!("{ms} ms"));
        let problem = c.rate_limit_problem.map(|p| p.to_string()).or(c.auth_problem.map(|p| p.to_string()));
        let category = match problem {
            Some(p) => format!("{}/{p}", c.category),
            None => c.category.to_string(),
        };
        let detail: String = c.detail().unwrap_or("").chars().take(48).collect();
        println!("{label:<32} {:>6}  {category:<32} {:<14} {wait:>10}  {detail}", c.status, c.action.as_str());
    }
}
