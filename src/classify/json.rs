//! JSON bodies: ApiException, problem shapes (PascalCase, camelCase, problem+json, the Payroll v2 envelope and
//! bare Payroll problems, Assets validation, the Files API's top-level array), Bank Feeds per-item errors,
//! message/modelState, `error` words (token endpoint, OAuth2 resource errors), and summarizeErrors=false batches.
//! Keys match in either casing.

use std::borrow::Cow;

use super::dom::{Array, Document, Kind, Object, Value};
use super::facts::{BodyFacts, UniqueList};

/// How many times a body is parsed, repairing between attempts what real bodies get wrong: a bare
/// `"problem": {…}` fragment (as Xero's docs show it), a body cut short, and stray tokens such as the `...` in
/// documentation samples.
const MAX_PARSES: usize = 16;

pub(crate) fn read(text: &str, facts: &mut BodyFacts) {
    // Well-formed bodies (nearly all) parse in place on the first pass; only a repair makes a copy to edit.
    let mut candidate = if text.starts_with('"') { Cow::Owned(format!("{{{text}}}")) } else { Cow::Borrowed(text) };
    for _ in 0..MAX_PARSES {
        let repaired = match Document::parse(&candidate) {
            Ok(document) => return read_document(document.root(), facts),
            Err(err) if err.is_eof() => close_truncated(&candidate),
            Err(err) if err.is_syntax() => {
                byte_offset(&candidate, err.line(), err.column()).and_then(|at| drop_stray_token(&candidate, at))
            }
            Err(_) => None,
        };
        let Some(repaired) = repaired else { return };
        candidate = Cow::Owned(repaired);
    }
}

fn read_document(root: Value<'_>, facts: &mut BodyFacts) {
    match root.kind() {
        Kind::Object(root) => read_root(root, facts),
        Kind::Array(items) => read_top_level_array(items, facts),
        _ => {}
    }
}

/// A top-level array: the Files API answers errors as `[{type, title, detail}, …]`; anything else is a collection.
fn read_top_level_array(items: Array<'_>, facts: &mut BodyFacts) {
    if let Some(first) = items.first().and_then(Value::as_object)
        && is_problem(first)
    {
        read_problem(first, facts);
    }
    read_collection(items, facts);
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

fn get_str<'v>(map: Object<'v>, key: &str) -> Option<&'v str> {
    map.get_ci(key).and_then(Value::as_str)
}

fn is_true(map: Object<'_>, key: &str) -> bool {
    map.get_ci(key).is_some_and(Value::is_true)
}

/// An object with a problem's human text (`title` or `detail`, any casing).
fn is_problem(map: Object<'_>) -> bool {
    map.get_ci("title").is_some() || map.get_ci("detail").is_some()
}

fn read_root(root: Object<'_>, facts: &mut BodyFacts) {
    if let Some(problem) = root.get_ci("problem").and_then(Value::as_object) {
        read_problem(problem, facts);
    }
    if is_problem(root) {
        read_problem(root, facts);
    } else {
        facts.error_number = root.get_ci("ErrorNumber").and_then(|v| match v.kind() {
            Kind::Number(n) => n,
            Kind::Str(s) => s.trim().parse().ok(),
            _ => None,
        });
        facts.error_type = get_str(root, "Type").map(str::to_owned);
        facts.message = facts.message.take().or_else(|| get_str(root, "Message").map(str::to_owned));
    }
    if let Some(error) = get_str(root, "error") {
        facts.token_error = Some(error.to_owned());
        if facts.message.is_none() {
            facts.message = Some(get_str(root, "error_description").unwrap_or(error).to_owned());
        }
    }

    let collection_key = root
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Elements"))
        .or_else(|| root.iter().find(|(k, v)| !is_message_list_key(k) && is_collection(*v)))
        .map(|(k, _)| k);
    for (key, value) in root.iter() {
        match value.as_array() {
            Some(items) if Some(key) == collection_key => read_collection(items, facts),
            _ => {
                walk_member(key, value, facts);
            }
        }
    }
}

fn read_problem(problem: Object<'_>, facts: &mut BodyFacts) {
    let title = get_str(problem, "title");
    let detail = get_str(problem, "detail");
    facts.problem_title = facts.problem_title.take().or(title.map(str::to_owned));
    facts.problem_detail = facts.problem_detail.take().or(detail.map(str::to_owned));
    facts.problem_instance = facts.problem_instance.take().or(get_str(problem, "instance").map(str::to_owned));
    facts.problem_type = facts.problem_type.take().or(get_str(problem, "type").map(str::to_owned));
    if facts.message.is_none() {
        facts.message = detail.or(title).map(str::to_owned);
    }
}

fn is_collection(value: Value<'_>) -> bool {
    value.as_array().is_some_and(|items| items.iter().any(Value::is_object))
}

fn is_message_list_key(key: &str) -> bool {
    [
        "ValidationErrors",
        "Warnings",
        "invalidFields",
        "invalidObjects",
        "fieldValidationErrors",
        "resourceValidationErrors",
        "modelState",
    ]
    .iter()
    .any(|k| key.eq_ignore_ascii_case(k))
}

/// The elements of a batch: an element failed when its status is ERROR, it says it has errors, it carries a Bank
/// Feeds item error, or any validation error sits anywhere inside it. The first item error is the problem.
fn read_collection(items: Array<'_>, facts: &mut BodyFacts) {
    for (index, item) in items.iter().enumerate() {
        let flagged = match item.as_object() {
            Some(element) => {
                let item_error = item_error(element);
                if let Some(error) = item_error
                    && facts.problem_title.is_none()
                    && facts.problem_detail.is_none()
                {
                    read_problem(error, facts);
                }
                item_error.is_some()
                    || get_str(element, "StatusAttributeString").is_some_and(|s| s.eq_ignore_ascii_case("ERROR"))
                    || is_true(element, "HasErrors")
                    || is_true(element, "HasValidationErrors")
            }
            None => false,
        };
        let errors = walk(item, facts);
        if flagged || errors > 0 {
            facts.failed_elements.push(u32::try_from(index).unwrap_or(u32::MAX));
        }
    }
}

/// A Bank Feeds item's problem: `"error": {…}` (FeedConnections) or the first of `"errors": [{…}]` (Statements).
fn item_error(element: Object<'_>) -> Option<Object<'_>> {
    element.get_ci("error").and_then(as_problem).or_else(|| {
        element.get_ci("errors").and_then(Value::as_array).and_then(|errors| errors.iter().find_map(as_problem))
    })
}

fn as_problem(value: Value<'_>) -> Option<Object<'_>> {
    value.as_object().filter(|map| is_problem(*map))
}

/// Collects messages in document order; returns how many validation errors the subtree holds.
fn walk(value: Value<'_>, facts: &mut BodyFacts) -> usize {
    match value.kind() {
        Kind::Object(map) => map.iter().map(|(k, v)| walk_member(k, v, facts)).sum(),
        Kind::Array(items) => items.iter().map(|v| walk(v, facts)).sum(),
        _ => 0,
    }
}

fn walk_member(key: &str, value: Value<'_>, facts: &mut BodyFacts) -> usize {
    if key.eq_ignore_ascii_case("ValidationErrors") {
        let count = push_messages(value, &mut facts.validation_messages);
        facts.validation_error_count += count;
        count
    } else if key.eq_ignore_ascii_case("Warnings") {
        push_messages(value, &mut facts.warnings);
        0
    } else if key.eq_ignore_ascii_case("invalidFields") {
        // Payroll v2: [{name, reason}]; an entry without a reason still names a bad field.
        push_field_errors(value, facts, |field, _| get_str(field, "reason").into_iter().collect());
        0
    } else if key.eq_ignore_ascii_case("invalidObjects") {
        // Payroll v2: the rejected objects themselves, with an errorMessage on the object or deep inside
        // (timesheet lines' validationResult).
        push_field_errors(value, facts, |_, object| {
            let mut messages = Vec::new();
            collect_strings(object, "errorMessage", &mut messages);
            messages
        });
        0
    } else if key.eq_ignore_ascii_case("fieldValidationErrors") || key.eq_ignore_ascii_case("resourceValidationErrors")
    {
        // Assets: each entry's detail, else its localisedMessage.
        push_field_errors(value, facts, |entry, _| {
            get_str(entry, "detail").or_else(|| get_str(entry, "localisedMessage")).into_iter().collect()
        });
        0
    } else if key.eq_ignore_ascii_case("modelState") {
        let messages = match value.as_object() {
            Some(fields) => fields.values().flat_map(items_or_self).filter_map(Value::as_str).collect(),
            None => Vec::new(),
        };
        facts.field_error_count += push_all(messages.into_iter(), &mut facts.validation_messages);
        0
    } else {
        walk(value, facts)
    }
}

/// `ValidationErrors` / `Warnings` entries: objects with `Message` (or the docs' `Description`), or bare strings.
/// Every entry counts, even one without a message.
fn push_messages(value: Value<'_>, list: &mut UniqueList) -> usize {
    let mut count = 0;
    for entry in items_or_self(value) {
        let message = match entry.kind() {
            Kind::Object(e) => get_str(e, "Message").or_else(|| get_str(e, "Description")),
            Kind::Str(s) => Some(s),
            Kind::Null => continue,
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

/// The entries of a Payroll or Assets validation container: each object entry counts as a field error, and the
/// messages `messages_of` finds in it are validation messages (the first also becomes `first_field_message`).
fn push_field_errors<'v>(
    value: Value<'v>,
    facts: &mut BodyFacts,
    messages_of: impl Fn(Object<'v>, Value<'v>) -> Vec<&'v str>,
) {
    for entry in items_of(value) {
        let Some(fields) = entry.as_object() else { continue };
        facts.field_error_count += 1;
        for message in messages_of(fields, entry) {
            facts.validation_messages.push(message);
            facts.first_field_message.get_or_insert_with(|| message.to_owned());
        }
    }
}

/// Every string member named `key` (any casing) in the subtree, in document order.
fn collect_strings<'v>(value: Value<'v>, key: &str, out: &mut Vec<&'v str>) {
    match value.kind() {
        Kind::Object(map) => {
            for (k, v) in map.iter() {
                match v.as_str() {
                    Some(text) if k.eq_ignore_ascii_case(key) => out.push(text),
                    _ => collect_strings(v, key, out),
                }
            }
        }
        Kind::Array(items) => items.iter().for_each(|v| collect_strings(v, key, out)),
        _ => {}
    }
}

fn items_of(value: Value<'_>) -> impl Iterator<Item = Value<'_>> {
    value.as_array().into_iter().flat_map(Array::iter)
}

/// An array's items, or a lone value as a one-item list (`null` is empty).
fn items_or_self(value: Value<'_>) -> impl Iterator<Item = Value<'_>> {
    let lone = match value.kind() {
        Kind::Array(_) | Kind::Null => None,
        _ => Some(value),
    };
    items_of(value).chain(lone)
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

    #[test]
    fn assets_entries_use_detail_else_localised_message() {
        let f = facts(
            r#"{"type": "t", "title": "The resource update failed validation.", "detail": "Validation Errors",
                "fieldValidationErrors": [{"fieldName": "A", "localisedMessage": "only localised"}],
                "resourceValidationErrors": [{"resourceName": "R", "detail": "resource detail", "localisedMessage": "x"}, {}]}"#,
        );
        assert_eq!(f.field_error_count, 3, "an entry without text still counts");
        assert_eq!(f.first_field_message.as_deref(), Some("only localised"));
        assert_eq!(f.validation_messages.into_vec(), ["only localised", "resource detail"]);
        assert_eq!(f.problem_detail.as_deref(), Some("Validation Errors"));
        assert!(f.failed_elements.is_empty(), "validation containers are not a batch");
    }

    #[test]
    fn payroll_invalid_objects_count_even_without_a_message() {
        let f = facts(r#"{"problem": {"title": "BadRequest", "invalidObjects": [{"isValid": false}, "odd"]}}"#);
        assert_eq!((f.field_error_count, f.first_field_message), (1, None));
        let f =
            facts(r#"{"title": "t", "invalidFields": [{"name": "A", "reason": null}, {"name": "B", "reason": "b"}]}"#);
        assert_eq!(f.field_error_count, 2);
        assert_eq!(f.validation_messages.into_vec(), ["b"]);
    }

    #[test]
    fn bank_feeds_items_take_the_first_problem_among_their_errors() {
        let f = facts(
            r#"{"items": [{"status": "DELIVERED"}, {"errors": [{"type": "x"}, {"title": "T", "detail": "D"}]},
                          {"error": {"title": "T2", "detail": "D2"}}, {"error": null, "errors": []}]}"#,
        );
        assert_eq!(f.failed_elements, [1, 2]);
        assert_eq!((f.problem_title.as_deref(), f.message.as_deref()), (Some("T"), Some("D")));
    }

    #[test]
    fn top_level_arrays_are_problems_only_when_they_look_like_one() {
        let f = facts(r#"[{"type": "Validation", "title": "Validation failure"}]"#);
        assert_eq!((f.message.as_deref(), f.problem_detail), (Some("Validation failure"), None));
        let f = facts(r#"[{"Name": "a"}, {"Name": "b", "ValidationErrors": [{"Message": "m"}]}]"#);
        assert_eq!((f.message, f.failed_elements), (None, vec![1]));
    }

    #[test]
    fn error_words_become_the_message_unless_described() {
        let f = facts(r#"{"error": "invalid_token"}"#);
        assert_eq!((f.token_error.as_deref(), f.message.as_deref()), (Some("invalid_token"), Some("invalid_token")));
        let f = facts(r#"{"error": "invalid_grant", "error_description": "grant expired"}"#);
        assert_eq!(f.message.as_deref(), Some("grant expired"));
        let f = facts(r#"{"error": {"code": 1}}"#);
        assert_eq!((f.token_error, f.message), (None, None));
    }
}
