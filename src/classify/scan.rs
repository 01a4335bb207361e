//! The fast path for 2xx bodies: a byte scan for anything that could make a success partial or carry warnings.
//! Only when it finds one is the body parsed. False positives (the words inside a string) only cost a parse.

use memchr::memmem;

/// True when the body may hold element errors or warnings (JSON or XML), so it must be parsed.
pub(crate) fn may_report_element_problems(body: &[u8]) -> bool {
    json_indicator(body) || xml_indicator(body)
}

fn json_indicator(body: &[u8]) -> bool {
    // `...Errors"` covers ValidationErrors, HasErrors and HasValidationErrors in either casing.
    for end in memmem::find_iter(body, b"rrors\"") {
        let key_end = end + b"rrors\"".len();
        let Some(key) = quoted_key_before(body, key_end) else { continue };
        let value = value_after_colon(body, key_end);
        if key.eq_ignore_ascii_case(b"ValidationErrors") {
            if non_empty_array_or_unknown(value) {
                return true;
            }
        } else if (key.eq_ignore_ascii_case(b"HasErrors") || key.eq_ignore_ascii_case(b"HasValidationErrors"))
            && value.starts_with(b"true")
        {
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
    memmem::find_iter(body, b"status=").any(|at| {
        let value = &body[at + b"status=".len()..];
        let value = value.strip_prefix(b"\"").or_else(|| value.strip_prefix(b"'")).unwrap_or(value);
        !starts_with_ci(value, b"OK")
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
}
