//! Raw HTTP responses as bytes, as `curl -i` saves them: a status line, header lines, a blank line (CRLF or LF),
//! then the body. Interim `1xx` blocks, a proxy's `200 Connection established` block and the redirects of a chain
//! (`curl -iL`) are skipped when another response follows: the last one is the answer.

use std::borrow::Cow;
use std::fmt;

/// The most header lines read from one response; more is refused rather than allocated.
pub const MAX_HEADERS: usize = 1024;

/// A raw response split into its parts; header text is decoded leniently (invalid UTF-8 replaced).
#[derive(Debug)]
pub struct RawResponse<'a> {
    pub status: u16,
    pub headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawError {
    /// The bytes do not start with an `HTTP/…` status line.
    NoStatusLine,
    /// The status line has no three-digit status code.
    BadStatusCode,
    /// More than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
}

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RawError::NoStatusLine => "not a raw HTTP response: expected a status line such as 'HTTP/1.1 200 OK'",
            RawError::BadStatusCode => "the status line has no valid three-digit status code",
            RawError::TooManyHeaders => "the response has more header lines than the limit of 1024",
        })
    }
}

impl std::error::Error for RawError {}

pub fn parse_raw(raw: &[u8]) -> Result<RawResponse<'_>, RawError> {
    let mut rest = trim_leading(raw);
    loop {
        let (status, headers, after) = parse_block(rest)?;
        let interim = (100..200).contains(&status) || (300..400).contains(&status) || is_proxy_tunnel(rest);
        if interim && trim_leading(after).starts_with(b"HTTP/") {
            rest = trim_leading(after);
            continue;
        }
        return Ok(RawResponse { status, headers, body: after });
    }
}

fn trim_leading(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    &bytes[start..]
}

fn is_proxy_tunnel(block: &[u8]) -> bool {
    let line = next_line(block).0;
    String::from_utf8_lossy(line).to_ascii_lowercase().contains("connection established")
}

/// Splits one line off, without its CRLF or LF.
fn next_line(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let line = &bytes[..i];
            (line.strip_suffix(b"\r").unwrap_or(line), Some(&bytes[i + 1..]))
        }
        None => (bytes.strip_suffix(b"\r").unwrap_or(bytes), None),
    }
}

type Block<'a> = (u16, Vec<(Cow<'a, str>, Cow<'a, str>)>, &'a [u8]);

fn parse_block(bytes: &[u8]) -> Result<Block<'_>, RawError> {
    let (status_line, mut rest) = next_line(bytes);
    if !status_line.starts_with(b"HTTP/") {
        return Err(RawError::NoStatusLine);
    }
    let code = status_line.split(|&b| b == b' ').filter(|part| !part.is_empty()).nth(1);
    let status = match code {
        Some(code) if code.len() == 3 && code.iter().all(u8::is_ascii_digit) => {
            code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
        }
        _ => return Err(RawError::BadStatusCode),
    };
    let mut headers: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    while let Some(remaining) = rest {
        let (line, after) = next_line(remaining);
        rest = after;
        if line.is_empty() {
            return Ok((status, headers, rest.unwrap_or(&[])));
        }
        if matches!(line[0], b' ' | b'\t') {
            // An obsolete folded continuation line belongs to the previous header's value.
            if let Some((_, value)) = headers.last_mut() {
                let joined = format!("{} {}", value, String::from_utf8_lossy(line).trim());
                *value = Cow::Owned(joined);
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if headers.len() == MAX_HEADERS {
            return Err(RawError::TooManyHeaders);
        }
        let name = String::from_utf8_lossy(&line[..colon]);
        let value = String::from_utf8_lossy(&line[colon + 1..]);
        headers.push((name, value));
    }
    Ok((status, headers, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_and_crlf_and_interim_blocks() {
        let r = parse_raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/2 429\nRetry-After: 5\n  more\nx\n\nbody\r\n").unwrap();
        assert_eq!(r.status, 429);
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers[0].1.trim(), "5 more");
        assert_eq!(r.body, b"body\r\n");
    }

    #[test]
    fn a_redirect_chain_is_its_last_response() {
        let chain =
            b"HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\nHTTP/1.1 301 Moved\r\n\r\nHTTP/2 429\r\nRetry-After: 3\r\n\r\n";
        assert_eq!(parse_raw(chain).unwrap().status, 429);
        let alone = parse_raw(b"HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\nredirecting").unwrap();
        assert_eq!((alone.status, alone.body), (302, &b"redirecting"[..]));
    }

    #[test]
    fn headers_only_and_errors() {
        let r = parse_raw(b"HTTP/1.1 204 No Content\r\nDate: x").unwrap();
        assert_eq!((r.status, r.headers.len(), r.body), (204, 1, &b""[..]));
        assert_eq!(parse_raw(b"").unwrap_err(), RawError::NoStatusLine);
        assert_eq!(parse_raw(b"{\"a\":1}").unwrap_err(), RawError::NoStatusLine);
        assert_eq!(parse_raw(b"HTTP/1.1 OK\r\n").unwrap_err(), RawError::BadStatusCode);
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "a: b\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(parse_raw(many.as_bytes()).unwrap_err(), RawError::TooManyHeaders);
    }
}
