//! JSON bodies: ApiException, problem shapes (PascalCase, camelCase, problem+json, the Payroll v2 envelope),
//! message/modelState, token-endpoint errors, and summarizeErrors=false batches. Keys match in either casing.

use serde_json::{Map, Value};

use super::facts::{BodyFacts, UniqueList};

/// How many times a malformed body is repaired and re-parsed before giving up.
const MAX_REPAIRS: usize = 16;

pub(crate) fn read(text: &str, facts: &mut BodyFacts) {
    let Some(value) = parse_lenient(text) else { return };
    match &value {
        Value::Object(root) => read_root(root, facts),
        Value::Array(items) => read_collection(items, facts),
        _ => {}
    }
}

/// Parses JSON, repairing what real bodies get wrong: a bare `"problem": {…}` fragment (as Xero's docs show it),
/// a body cut short, and stray tokens such as the `...` in documentation samples.
fn parse_lenient(text: &str) -> Option<Value> {
    let mut candidate = if text.starts_with('"') { format!("{{{text}}}") } else { text.to_owned() };
    for _ in 0..MAX_REPAIRS {
        match serde_json::from_str::<Value>(&candidate) {
            Ok(value) => return Some(value),
            Err(err) if err.is_eof() => candidate = close_truncated(&candidate)?,
            Err(err) if err.is_syntax() => {
                let at = byte_offset(&candidate, err.line(), err.column())?;
                candidate = drop_stray_token(&candidate, at)?;
            }
            Err(_) => return None,
        }
    }
    None
}

fn byte_offset(text: &str, line: usize, column: usize) -> Option<usize> {
    let line_start = if line <= 1 { 0 } else { text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)? };
    Some((line_start + column.saturating_sub(1)).min(text.len()))
}

/// Removes the run of non-structural characters at `at` (e.g. `...`). `None` when there is nothing to remove,
/// so a body whose damage is structural is not "repaired" into something else.
fn drop_stray_token(text: &str, at: usize) -> Option<String> {
    let bytes = text.as_bytes();
    let is_stray = |b: u8| !matches!(b, b'"' | b'{' | b'}' | b'[' | b']' | b',' | b':') && !b.is_ascii_whitespace();
    let mut end = at;
    while end < bytes.len() && is_stray(bytes[end]) {
        end += 1;
    }
    if end == at || !text.is_char_boundary(at) || !text.is_char_boundary(end) {
        return None;
    }
    Some(format!("{}{}", &text[..at], &text[end..]))
}

/// Cuts a truncated document back to its last complete member and closes what is open.
fn close_truncated(text: &str) -> Option<String> {
    let mut open: Vec<u8> = Vec::new();
    let mut last_cut: Option<(usize, Vec<u8>)> = None;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => open.push(b'}'),
            b'[' => open.push(b']'),
            b'}' | b']' => {
                open.pop();
            }
            b',' => last_cut = Some((i, open.clone())),
            _ => {}
        }
    }
    let (cut, still_open) = last_cut?;
    let mut repaired = text[..cut].to_owned();
    repaired.extend(still_open.iter().rev().map(|&b| b as char));
    Some(repaired)
}

/// A member by name, in either casing.
fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

fn get_str<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    get_ci(map, key).and_then(Value::as_str)
}

fn is_true(map: &Map<String, Value>, key: &str) -> bool {
    matches!(get_ci(map, key), Some(Value::Bool(true)))
}

fn read_root(root: &Map<String, Value>, facts: &mut BodyFacts) {
    if let Some(Value::Object(problem)) = get_ci(root, "problem") {
        read_problem(problem, facts);
    }
    if get_ci(root, "title").is_some() || get_ci(root, "detail").is_some() {
        read_problem(root, facts);
    } else {
        facts.error_number = get_ci(root, "ErrorNumber").and_then(|v| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        facts.error_type = get_str(root, "Type").map(str::to_owned);
        facts.message = facts.message.take().or_else(|| get_str(root, "Message").map(str::to_owned));
    }
    if let Some(error) = get_str(root, "error") {
        facts.token_error = Some(error.to_owned());
        if facts.message.is_none() {
            facts.message = get_str(root, "error_description").map(str::to_owned);
        }
    }

    let collection_key = root
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Elements"))
        .or_else(|| root.iter().find(|(k, v)| !is_message_list_key(k) && is_collection(v)))
        .map(|(k, _)| k.as_str());
    for (key, value) in root {
        match value {
            Value::Array(items) if Some(key.as_str()) == collection_key => read_collection(items, facts),
            _ => {
                walk_member(key, value, facts);
            }
        }
    }
}

fn read_problem(problem: &Map<String, Value>, facts: &mut BodyFacts) {
    let title = get_str(problem, "title");
    let detail = get_str(problem, "detail");
    facts.problem_title = facts.problem_title.take().or(title.map(str::to_owned));
    facts.problem_detail = facts.problem_detail.take().or(detail.map(str::to_owned));
    facts.problem_instance = facts.problem_instance.take().or(get_str(problem, "instance").map(str::to_owned));
    if facts.message.is_none() {
        facts.message = detail.or(title).map(str::to_owned);
    }
}

fn is_collection(value: &Value) -> bool {
    matches!(value, Value::Array(items) if items.iter().any(Value::is_object))
}

fn is_message_list_key(key: &str) -> bool {
    ["ValidationErrors", "Warnings", "invalidFields", "modelState"].iter().any(|k| key.eq_ignore_ascii_case(k))
}

/// The elements of a batch: an element failed when its status is ERROR, it says it has errors, or any
/// validation error sits anywhere inside it.
fn read_collection(items: &[Value], facts: &mut BodyFacts) {
    for (index, item) in items.iter().enumerate() {
        let flagged = match item {
            Value::Object(element) => {
                get_str(element, "StatusAttributeString").is_some_and(|s| s.eq_ignore_ascii_case("ERROR"))
                    || is_true(element, "HasErrors")
                    || is_true(element, "HasValidationErrors")
            }
            _ => false,
        };
        let errors = walk(item, facts);
        if flagged || errors > 0 {
            facts.failed_elements.push(u32::try_from(index).unwrap_or(u32::MAX));
        }
    }
}

/// Collects messages in document order; returns how many validation errors the subtree holds.
fn walk(value: &Value, facts: &mut BodyFacts) -> usize {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| walk_member(k, v, facts)).sum(),
        Value::Array(items) => items.iter().map(|v| walk(v, facts)).sum(),
        _ => 0,
    }
}

fn walk_member(key: &str, value: &Value, facts: &mut BodyFacts) -> usize {
    if key.eq_ignore_ascii_case("ValidationErrors") {
        let count = push_messages(value, &mut facts.validation_messages);
        facts.validation_error_count += count;
        count
    } else if key.eq_ignore_ascii_case("Warnings") {
        push_messages(value, &mut facts.warnings);
        0
    } else if key.eq_ignore_ascii_case("invalidFields") {
        let reasons = items_of(value).filter_map(|f| f.as_object().and_then(|f| get_str(f, "reason")));
        facts.field_error_count += push_all(reasons, &mut facts.validation_messages);
        0
    } else if key.eq_ignore_ascii_case("modelState") {
        let messages = match value {
            Value::Object(fields) => fields.values().flat_map(items_or_self).filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        facts.field_error_count += push_all(messages.into_iter(), &mut facts.validation_messages);
        0
    } else {
        walk(value, facts)
    }
}

/// `ValidationErrors` / `Warnings` entries: objects with `Message` (or the docs' `Description`), or bare strings.
/// Every entry counts, even one without a message.
fn push_messages(value: &Value, list: &mut UniqueList) -> usize {
    let mut count = 0;
    for entry in items_or_self(value) {
        let message = match entry {
            Value::Object(e) => get_str(e, "Message").or_else(|| get_str(e, "Description")),
            Value::String(s) => Some(s.as_str()),
            Value::Null => continue,
            _ => None,
        };
        count += 1;
        if let Some(message) = message {
            list.push(message);
        }
    }
    count
}

fn push_all<'a>(messages: impl Iterator<Item = &'a str>, list: &mut UniqueList) -> usize {
    messages.map(|m| list.push(m)).count()
}

fn items_of(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().map(|a| a.as_slice()).unwrap_or_default().iter()
}

/// An array's items, or a lone value as a one-item list (`null` is empty).
fn items_or_self(value: &Value) -> impl Iterator<Item = &Value> {
    let items: &[Value] = match value {
        Value::Array(items) => items,
        Value::Null => &[],
        other => std::slice::from_ref(other),
    };
    items.iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(text: &str) -> BodyFacts {
        let mut f = BodyFacts::default();
        read(text, &mut f);
        f
    }

    #[test]
    fn truncated_body_keeps_complete_members() {
        let f = facts(r#"{"ErrorNumber": 10, "Type": "ValidationException", "Message": "A valid"#);
        assert_eq!(f.error_number, Some(10));
        assert_eq!(f.error_type.as_deref(), Some("ValidationException"));
        assert_eq!(f.message, None);
    }

    #[test]
    fn docs_sample_with_ellipses_is_read() {
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/xero/200_summarize_errors_false_docs_example.txt"
        ))
        .expect("../shared/fixtures beside the checkout");
        let f = facts(&body);
        assert_eq!(f.failed_elements, [3]);
        assert_eq!(f.validation_messages.into_vec(), ["Invoice not of valid type for creation"]);
        assert_eq!(f.warnings.into_vec(), ["Only AUTHORISED invoices may have SentToContact updated."]);
    }

    #[test]
    fn problem_fragment_and_deep_nesting_do_not_fail() {
        let f = facts(r#""problem": {"title": "NotFound", "detail": "Resource was not found"}"#);
        assert_eq!(f.problem_detail.as_deref(), Some("Resource was not found"));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let f = facts(&deep);
        assert!(f.failed_elements.is_empty());
    }

    #[test]
    fn nested_validation_errors_mark_their_element() {
        let f = facts(
            r#"{"Invoices":[{"A":1},{"Contact":{"ValidationErrors":[{"Message":"x"},{"Message":"x"}]}},{"LineItems":[{"ValidationErrors":[{}]}]}]}"#,
        );
        assert_eq!(f.failed_elements, [1, 2]);
        assert_eq!(f.validation_error_count, 3);
        assert_eq!(f.validation_messages.into_vec(), ["x"]);
    }
}
