//! The fast path for 2xx bodies: a byte scan for anything that could make a success partial, carry warnings or
//! say the whole request failed. Only when it finds one is the body parsed. False positives (the words inside a
//! string) only cost a parse. The body's first byte picks the family, so a JSON page pays for no XML pattern and
//! the other way round.

use memchr::memmem;

/// True when the body may hold element errors, warnings or a failed root status (JSON or XML), so it must be
/// parsed. Bodies of any other family (text, form, empty) carry nothing a success can report.
pub(crate) fn may_report_element_problems(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match skip_ws(body).first() {
        Some(b'{' | b'[' | b'"') => json_indicator(body),
        Some(b'<') => xml_indicator(body),
        _ => false,
    }
}

fn json_indicator(body: &[u8]) -> bool {
    // `...rror"` and `...rrors"` cover ValidationErrors, HasErrors, HasValidationErrors and Bank Feeds items'
    // `error` / `errors`, in either casing.
    for at in memmem::find_iter(body, b"rror") {
        let key_end = match body.get(at + 4) {
            Some(b'"') => at + 5,
            Some(b's') if body.get(at + 5) == Some(&b'"') => at + 6,
            _ => continue,
        };
        let Some(key) = quoted_key_before(body, key_end) else { continue };
        let value = value_after_colon(body, key_end);
        let problem = if key.eq_ignore_ascii_case(b"ValidationErrors") || key.eq_ignore_ascii_case(b"errors") {
            non_empty_array_or_unknown(value)
        } else if key.eq_ignore_ascii_case(b"HasErrors") || key.eq_ignore_ascii_case(b"HasValidationErrors") {
            value.starts_with(b"true")
        } else if key.eq_ignore_ascii_case(b"error") {
            value.starts_with(b"{")
        } else {
            false
        };
        if problem {
            return true;
        }
    }
    for end in memmem::find_iter(body, b"arnings\"") {
        let key_end = end + b"arnings\"".len();
        if quoted_key_before(body, key_end).is_some_and(|k| k.eq_ignore_ascii_case(b"Warnings"))
            && non_empty_array_or_unknown(value_after_colon(body, key_end))
        {
            return true;
        }
    }
    for end in memmem::find_iter(body, b"tatusAttributeString\"") {
        let key_end = end + b"tatusAttributeString\"".len();
        let value = value_after_colon(body, key_end);
        if quoted_key_before(body, key_end).is_some() && !starts_with_ci(value, b"\"OK\"") {
            return true;
        }
    }
    false
}

fn xml_indicator(body: &[u8]) -> bool {
    let tag_followed_by_end = |pattern: &[u8]| {
        memmem::find_iter(body, pattern)
            .any(|at| matches!(body.get(at + pattern.len()), Some(b'>' | b' ' | b'/' | b'\t' | b'\r' | b'\n')))
    };
    if tag_followed_by_end(b"<ValidationError") || tag_followed_by_end(b"<Warning") {
        return true;
    }
    // One pass for both: an element's `status="ERROR"` attribute and XPM's `<Status>ERROR</Status>`.
    memmem::find_iter(body, b"tatus").any(|at| {
        let before = at.checked_sub(1).map(|i| body[i]);
        let after = &body[at + b"tatus".len()..];
        if before == Some(b's') && after.starts_with(b"=") {
            let value = &after[1..];
            let value = value.strip_prefix(b"\"").or_else(|| value.strip_prefix(b"'")).unwrap_or(value);
            !starts_with_ci(value, b"OK")
        } else {
            before == Some(b'S') && at >= 2 && body[at - 2] == b'<' && starts_with_ci(after, b">ERROR")
        }
    })
}

/// The key text of a JSON key ending (with its closing quote) at `key_end`, when it is preceded by an opening quote.
fn quoted_key_before(body: &[u8], key_end: usize) -> Option<&[u8]> {
    let inner_end = key_end - 1;
    let start = body[..inner_end].iter().rposition(|&b| b == b'"')? + 1;
    let key = &body[start..inner_end];
    (key.len() <= 32).then_some(key)
}

/// The bytes after `"key"` `:` and whitespace; empty when there is no colon.
fn value_after_colon(body: &[u8], key_end: usize) -> &[u8] {
    let rest = skip_ws(&body[key_end..]);
    match rest.strip_prefix(b":") {
        Some(after) => skip_ws(after),
        None => &[],
    }
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    &bytes[start..]
}

/// `[]` and `null` are empty; an array with content, or anything odd, may matter.
fn non_empty_array_or_unknown(value: &[u8]) -> bool {
    if let Some(inner) = value.strip_prefix(b"[") {
        return !skip_ws(inner).starts_with(b"]");
    }
    !(value.starts_with(b"null") || value.is_empty())
}

fn starts_with_ci(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::may_report_element_problems as scan;

    #[test]
    fn clean_pages_need_no_parse() {
        let page = br#"{"Status":"OK","Invoices":[{"HasErrors":false,"hasValidationErrors": false,"ValidationErrors":[ ],"Warnings":null,"StatusAttributeString":"OK"}]}"#;
        assert!(!scan(page));
        assert!(!scan(b"<Response><Invoices><Invoice status=\"OK\"><ValidationErrors /><Warnings /></Invoice></Invoices></Response>"));
    }

    #[test]
    fn each_indicator_is_found() {
        for body in [
            &br#"{"HasErrors": true}"#[..],
            br#"{"x":[{"hasValidationErrors":true}]}"#,
            br#"{"ValidationErrors": [{"Message":"m"}]}"#,
            br#"{"validationErrors":[{}]}"#,
            br#"{"Warnings":[{"Message":"w"}]}"#,
            br#"{"StatusAttributeString": "ERROR"}"#,
            br#"<Invoice status="ERROR"/>"#,
            b"<ValidationErrors><ValidationError><Message>m</Message></ValidationError></ValidationErrors>",
            b"<Warnings><Warning><Message>w</Message></Warning></Warnings>",
        ] {
            assert!(scan(body), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn bank_feeds_item_errors_and_xpm_status_are_found() {
        for body in [
            &br#"{"items": [{"status": "REJECTED", "error": {"title": "t"}}]}"#[..],
            br#"{"items": [{"errors" : [{"detail": "d"}]}]}"#,
            b"\xEF\xBB\xBF <Response><Status>ERROR</Status></Response>",
            b"<Response>\n  <Status>Error</Status></Response>",
        ] {
            assert!(scan(body), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn empty_or_harmless_values_need_no_parse() {
        for body in [
            &br#"{"items": [{"error": null, "errors": [], "Error": "a word", "mirror": "errors"}]}"#[..],
            b"<Response><Status>OK</Status><Invoices><Invoice><Status>AUTHORISED</Status></Invoice></Invoices></Response>",
            b"plain text with status=ERROR and <ValidationError>",
            b"",
        ] {
            assert!(!scan(body), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn each_family_is_scanned_only_for_its_own_indicators() {
        // XML words inside a JSON string, and JSON keys inside XML text, cannot be element problems.
        assert!(!scan(br#"{"Note": "<ValidationError> status=\"ERROR\""}"#));
        assert!(!scan(br#"<Note>"HasErrors": true, "ValidationErrors": [1]</Note>"#));
    }
}
