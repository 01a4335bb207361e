//! Body sniffing: Xero labels XML and form bodies `text/html`, so the bytes decide the family (xero-reference §2).

use super::facts::BodyFacts;
use super::{json, scan, xml};

/// The most body bytes classification reads. Beyond it the body is treated as truncated at this length, so a
/// hostile or runaway body never costs more than this much work or memory.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Longest plain-text body kept as the message; longer text (an HTML page, say) is not a message.
const MAX_TEXT_MESSAGE: usize = 512;

/// Reads the body. For a 2xx, a cheap scan decides first whether anything in the body can matter.
pub(crate) fn read(body: &[u8], success: bool) -> BodyFacts {
    let body = &body[..body.len().min(MAX_BODY_BYTES)];
    let mut facts = BodyFacts::default();
    let utf16 = matches!(body, [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..]);
    // The fast path for large successful pages: no error indicator in the raw bytes, nothing to parse.
    if success && !utf16 && !scan::may_report_element_problems(body) {
        return facts;
    }
    let decoded = decode_text(body);
    let text = decoded.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return facts;
    }
    match text.as_bytes()[0] {
        b'{' | b'[' | b'"' => json::read(text, &mut facts),
        b'<' => xml::read(text, &mut facts),
        _ if text.contains("oauth_problem=") => read_form(text, &mut facts),
        _ => {
            if text.len() <= MAX_TEXT_MESSAGE && !text.contains('\n') {
                facts.text = Some(text.to_owned());
            }
        }
    }
    facts
}

/// Bodies are bytes. UTF-16 with a byte-order mark is decoded; anything else is read as UTF-8, replacing invalid
/// sequences, so a stray byte never hides the rest of the message.
fn decode_text(body: &[u8]) -> std::borrow::Cow<'_, str> {
    let utf16 = |big_endian: bool| {
        let units = body[2..].chunks_exact(2).map(|pair| {
            if big_endian { u16::from_be_bytes([pair[0], pair[1]]) } else { u16::from_le_bytes([pair[0], pair[1]]) }
        });
        char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}')).collect::<String>().into()
    };
    match body {
        [0xFF, 0xFE, ..] => utf16(false),
        [0xFE, 0xFF, ..] => utf16(true),
        // Valid UTF-8 (nearly every body) is borrowed after the fast check; only invalid bytes take the slow path.
        _ => std::str::from_utf8(body).map_or_else(|_| String::from_utf8_lossy(body), std::borrow::Cow::Borrowed),
    }
}

/// OAuth 1.0a problems: `oauth_problem=…&oauth_problem_advice=…`, percent-encoded (advice sometimes raw).
fn read_form(text: &str, facts: &mut BodyFacts) {
    for (key, value) in form_urlencoded::parse(text.as_bytes()) {
        match key.as_ref() {
            "oauth_problem" if facts.oauth_problem.is_none() => facts.oauth_problem = Some(value.into_owned()),
            "oauth_problem_advice" if facts.oauth_problem_advice.is_none() => {
                facts.oauth_problem_advice = Some(value.into_owned())
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_bodies_with_bom_are_decoded() {
        let mut body = vec![0xFF, 0xFE];
        for unit in "<ApiException><Message>hé</Message></ApiException>".encode_utf16() {
            body.extend_from_slice(&unit.to_le_bytes());
        }
        let facts = read(&body, false);
        assert_eq!(facts.message.as_deref(), Some("hé"));
    }

    #[test]
    fn form_advice_keeps_its_trailing_space_and_raw_text() {
        let facts = read(b"oauth_problem=nonce_used&oauth_problem_advice=used%20\n", false);
        assert_eq!(facts.oauth_problem_advice.as_deref(), Some("used "));
        let facts = read(b"oauth_problem=token_rejected&oauth_problem_advice=not authorized, or revoked", false);
        assert_eq!(facts.oauth_problem_advice.as_deref(), Some("not authorized, or revoked"));
    }

    #[test]
    fn bom_and_deeply_nested_xml_are_survived() {
        let facts = read(b"\xEF\xBB\xBF{\"ErrorNumber\": 16, \"Type\": \"QueryParseException\"}", false);
        assert_eq!(facts.error_number, Some(16));
        let deep = format!(
            "<ApiException><Message>m</Message>{}{}</ApiException>",
            "<a>".repeat(200_000),
            "</a>".repeat(200_000)
        );
        assert_eq!(read(deep.as_bytes(), false).message.as_deref(), Some("m"));
        let unclosed = "<a>".repeat(200_000);
        assert!(read(unclosed.as_bytes(), true).message.is_none());
    }

    #[test]
    fn long_or_multiline_text_is_not_a_message() {
        assert_eq!(
            read(b"  The Organisation is offline\n", false).text.as_deref(),
            Some("The Organisation is offline")
        );
        assert!(read(b"line one\nline two", false).text.is_none());
        assert!(read(&[b'x'; 600], false).text.is_none());
    }
}
