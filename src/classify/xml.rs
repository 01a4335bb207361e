//! XML bodies: `<ApiException>` (and AU Payroll's `<Response>` root), the legacy API's
//! `<Response><Errors><Error><Description>`, Xero Practice Manager's `<Response><Status>ERROR</Status>
//! <ErrorDescription>`, and XML batches whose elements carry `status="ERROR"`. Read without namespace resolution, so an undeclared `xsi:` prefix is harmless, and as the
//! text it is, whatever encoding the declaration claims.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::facts::BodyFacts;

/// Which text is being collected, and where it goes.
#[derive(Clone, Copy, PartialEq)]
enum Capture {
    ErrorNumber,
    Type,
    Message,
    RootStatus,
    ValidationMessage,
    Warning,
}

struct Walker<'f> {
    facts: &'f mut BodyFacts,
    depth: usize,
    /// Depth of the open `<ValidationError>` / `<Warning>`, if any.
    validation_error_at: Option<usize>,
    warning_at: Option<usize>,
    /// Whether a legacy `<Errors>` list (under the root) is open.
    in_errors: bool,
    /// Index of the next element (depth 3) under the current depth-2 collection, and whether the open one failed.
    next_element: u32,
    open_element: Option<(u32, bool)>,
    capture: Option<(Capture, usize, String)>,
}

pub(crate) fn read(text: &str, facts: &mut BodyFacts) {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    let mut walker = Walker {
        facts,
        depth: 0,
        validation_error_at: None,
        warning_at: None,
        in_errors: false,
        next_element: 0,
        open_element: None,
        capture: None,
    };
    // A malformed or truncated document keeps what was read before the damage.
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(tag) => walker.open(&tag),
            Event::Empty(tag) => {
                walker.open(&tag);
                walker.close();
            }
            Event::End(_) => walker.close(),
            Event::Text(text) => walker.text(&text.xml10_content()),
            Event::CData(data) => walker.text(&data),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => predefined_entity(&reference),
                };
                if let Some(c) = resolved {
                    walker.text(c.encode_utf8(&mut [0; 4]));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
}

fn predefined_entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

impl Walker<'_> {
    fn open(&mut self, tag: &BytesStart<'_>) {
        self.depth += 1;
        let name = tag.local_name();
        let name = name.as_ref();
        match self.depth {
            2 => self.next_element = 0,
            3 => {
                let failed = tag.attributes().flatten().any(|a| {
                    a.key.local_name().as_ref().eq_ignore_ascii_case("status") && a.value.eq_ignore_ascii_case("ERROR")
                });
                self.open_element = Some((self.next_element, failed));
                self.next_element += 1;
            }
            _ => {}
        }
        if name == "ValidationError" {
            self.validation_error_at = Some(self.depth);
            self.facts.validation_error_count += 1;
            if let Some((_, failed)) = &mut self.open_element {
                *failed = true;
            }
        } else if name == "Warning" {
            self.warning_at = Some(self.depth);
        } else if name == "Errors" && self.depth == 2 {
            self.in_errors = true;
        }
        let target = match name {
            "Message" | "Description" if self.validation_error_at.is_some() => Some(Capture::ValidationMessage),
            "Message" | "Description" if self.warning_at.is_some() => Some(Capture::Warning),
            "ErrorNumber" if self.depth == 2 => Some(Capture::ErrorNumber),
            "Type" if self.depth == 2 => Some(Capture::Type),
            "Message" | "ErrorDescription" if self.depth == 2 => Some(Capture::Message),
            "Status" if self.depth == 2 => Some(Capture::RootStatus),
            // Legacy: Errors/Error/Description, else Errors/Error/Exception/Message (the first one read wins).
            "Description" if self.in_errors && self.depth == 4 => Some(Capture::Message),
            "Message" if self.in_errors && self.depth == 5 => Some(Capture::Message),
            _ => None,
        };
        if let Some(target) = target {
            self.capture = Some((target, self.depth, String::new()));
        }
    }

    fn text(&mut self, text: &str) {
        if let Some((_, _, buffer)) = &mut self.capture {
            buffer.push_str(text);
        }
    }

    fn close(&mut self) {
        if self.depth == 0 {
            return;
        }
        if self.capture.as_ref().is_some_and(|(_, at, _)| *at == self.depth)
            && let Some((target, _, text)) = self.capture.take()
        {
            let text = text.trim();
            let facts = &mut *self.facts;
            match target {
                Capture::ErrorNumber => facts.error_number = facts.error_number.or(text.parse().ok()),
                Capture::Type => facts.error_type = facts.error_type.take().or(Some(text.to_owned())),
                Capture::Message => facts.message = facts.message.take().or(Some(text.to_owned())),
                Capture::RootStatus => facts.request_failed |= text.eq_ignore_ascii_case("ERROR"),
                Capture::ValidationMessage => facts.validation_messages.push(text),
                Capture::Warning => facts.warnings.push(text),
            }
        }
        if self.validation_error_at == Some(self.depth) {
            self.validation_error_at = None;
        }
        if self.warning_at == Some(self.depth) {
            self.warning_at = None;
        }
        if self.depth == 2 {
            self.in_errors = false;
        }
        if self.depth == 3
            && let Some((index, failed)) = self.open_element.take()
            && failed
        {
            self.facts.failed_elements.push(index);
        }
        self.depth -= 1;
    }
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
    fn batch_elements_with_status_error_are_indexed() {
        let f = facts(
            r#"<Response><Id>1</Id><Status>OK</Status><Invoices>
            <Invoice status="OK"><ValidationErrors /></Invoice>
            <Invoice status="WARNING"><Warnings><Warning><Message>w &amp; w</Message></Warning></Warnings></Invoice>
            <Invoice status="ERROR"><ValidationErrors><ValidationError><Message>bad</Message></ValidationError></ValidationErrors></Invoice>
            </Invoices></Response>"#,
        );
        assert_eq!(f.failed_elements, [2]);
        assert_eq!(f.warnings.into_vec(), ["w & w"]);
        assert_eq!(f.validation_messages.into_vec(), ["bad"]);
    }

    #[test]
    fn truncated_xml_keeps_what_it_read() {
        let f = facts("<ApiException><ErrorNumber>10</ErrorNumber><Type>ValidationException</Type><Message>A valid");
        assert_eq!(f.error_number, Some(10));
        assert_eq!(f.error_type.as_deref(), Some("ValidationException"));
    }

    #[test]
    fn html_error_pages_are_harmless() {
        let f = facts("<html><body><h1>Bad Gateway</h1><br></body></html>");
        assert!(f.message.is_none() && f.failed_elements.is_empty());
    }

    #[test]
    fn legacy_errors_give_the_description_else_the_exception_message() {
        let f = facts(
            "<Response><Errors><Error><Exception><Message>from exception</Message></Exception></Error></Errors>\
             <Status>InternalServerError</Status></Response>",
        );
        assert_eq!(f.message.as_deref(), Some("from exception"));
        assert!(!f.request_failed, "only ERROR says the request failed");
        let f = facts(
            "<Response><Errors><Error><Description>first</Description></Error><Error><Description>second</Description></Error></Errors></Response>",
        );
        assert_eq!(f.message.as_deref(), Some("first"));
        let f =
            facts("<Response><Other><Error><Description>not an error list</Description></Error></Other></Response>");
        assert_eq!(f.message, None);
    }

    #[test]
    fn only_the_root_status_says_the_request_failed() {
        let f = facts("<Response><Status>error</Status><ErrorDescription>why</ErrorDescription></Response>");
        assert!(f.request_failed);
        assert_eq!(f.message.as_deref(), Some("why"));
        let f = facts("<Response><Status>OK</Status><Jobs><Job><Status>ERROR</Status></Job></Jobs></Response>");
        assert!(!f.request_failed);
    }
}
