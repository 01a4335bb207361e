//! What the body readers (JSON, XML, form, text) found, before the decision table looks at the status.

use std::collections::HashSet;

/// Messages in document order with exact duplicates dropped.
#[derive(Debug, Default)]
pub(crate) struct UniqueList {
    items: Vec<String>,
    seen: HashSet<String>,
}

impl UniqueList {
    pub fn push(&mut self, message: &str) {
        if !self.seen.contains(message) {
            self.seen.insert(message.to_owned());
            self.items.push(message.to_owned());
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        self.items
    }
}

/// Everything the body told us, before the decision table looks at the status.
#[derive(Debug, Default)]
pub(crate) struct BodyFacts {
    pub error_number: Option<i64>,
    pub error_type: Option<String>,
    pub message: Option<String>,
    /// The first message of a Payroll v2 or Assets validation container: it says more than the container's own
    /// generic detail ("Validation error occurred."), so it becomes the message (xero-reference §2.1, §5).
    pub first_field_message: Option<String>,
    pub validation_messages: UniqueList,
    pub warnings: UniqueList,
    /// Validation errors seen, duplicates included: an error without a message still counts.
    pub validation_error_count: usize,
    /// Payroll `invalidFields` / `invalidObjects`, Assets field and resource errors, or Projects `modelState`
    /// entries seen.
    pub field_error_count: usize,
    pub failed_elements: Vec<u32>,
    /// The root says the whole request failed although the status is 2xx (XPM `<Status>ERROR</Status>`).
    pub request_failed: bool,
    pub oauth_problem: Option<String>,
    pub oauth_problem_advice: Option<String>,
    /// A problem body's `type` (`rate-limit-error`, `invalid-request`, …).
    pub problem_type: Option<String>,
    pub problem_title: Option<String>,
    pub problem_detail: Option<String>,
    pub problem_instance: Option<String>,
    /// A JSON root's `error` word: the token endpoint's (`invalid_grant`, …) or an OAuth2 resource error
    /// (`invalid_token`).
    pub token_error: Option<String>,
    /// A short plain-text body, trimmed.
    pub text: Option<String>,
}

impl BodyFacts {
    pub fn has_element_errors(&self) -> bool {
        self.validation_error_count > 0 || !self.failed_elements.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_list_keeps_first_occurrence_order() {
        let mut list = UniqueList::default();
        for m in ["b", "a", "b", "c", "a"] {
            list.push(m);
        }
        assert_eq!(list.into_vec(), ["b", "a", "c"]);
    }
}
