//! A parsed JSON body as one flat list of nodes, its strings borrowed from the body wherever they need no
//! unescaping. serde_json still does the parsing; only the tree it builds is ours. Its `Value` costs an
//! allocation per string, object and array and a hash per key, and dropping it walks the tree again: that was
//! most of classifying a 1 KB error body, which is read once and thrown away.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

enum Node<'a> {
    Null,
    Bool(bool),
    /// Only integers that fit an i64 are ever read (`ErrorNumber`); other numbers are kept as present.
    Number(Option<i64>),
    Str(Cow<'a, str>),
    /// A container's members follow it (an object's as key, value, key, value …); `end` is the index after them.
    Array {
        end: u32,
    },
    Object {
        end: u32,
    },
}

/// A parsed document; [`Document::root`] reads it.
pub(crate) struct Document<'a> {
    nodes: Vec<Node<'a>>,
}

impl<'a> Document<'a> {
    /// Parses `text` with serde_json's rules (its recursion limit included).
    pub fn parse(text: &'a str) -> serde_json::Result<Self> {
        // A node per ~8 bytes covers typical error bodies without regrowing; a large body grows the list as it
        // goes instead of reserving for nodes it may not have.
        let mut nodes = Vec::with_capacity((text.len() / 8 + 4).min(4096));
        let mut deserializer = serde_json::Deserializer::from_str(text);
        Append(&mut nodes).deserialize(&mut deserializer)?;
        deserializer.end()?;
        if nodes.len() > u32::MAX as usize {
            return Err(serde::de::Error::custom("document too large"));
        }
        Ok(Document { nodes })
    }

    pub fn root(&self) -> Value<'_> {
        Value { nodes: &self.nodes, at: 0 }
    }
}

/// A value inside a [`Document`].
#[derive(Clone, Copy)]
pub(crate) struct Value<'v> {
    nodes: &'v [Node<'v>],
    at: usize,
}

/// What a [`Value`] is, as `serde_json::Value`'s variants say it.
pub(crate) enum Kind<'v> {
    Null,
    /// `true` or `false`: [`Value::is_true`] tells which.
    Bool,
    Number(Option<i64>),
    Str(&'v str),
    Array(Array<'v>),
    Object(Object<'v>),
}

impl<'v> Value<'v> {
    pub fn kind(self) -> Kind<'v> {
        match &self.nodes[self.at] {
            Node::Null => Kind::Null,
            Node::Bool(_) => Kind::Bool,
            Node::Number(n) => Kind::Number(*n),
            Node::Str(s) => Kind::Str(s),
            Node::Array { end } => Kind::Array(Array { nodes: self.nodes, start: self.at + 1, end: *end as usize }),
            Node::Object { end } => Kind::Object(Object { nodes: self.nodes, start: self.at + 1, end: *end as usize }),
        }
    }

    pub fn as_str(self) -> Option<&'v str> {
        match &self.nodes[self.at] {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(self) -> Option<Object<'v>> {
        match self.kind() {
            Kind::Object(object) => Some(object),
            _ => None,
        }
    }

    pub fn as_array(self) -> Option<Array<'v>> {
        match self.kind() {
            Kind::Array(array) => Some(array),
            _ => None,
        }
    }

    pub fn is_object(self) -> bool {
        matches!(self.nodes[self.at], Node::Object { .. })
    }

    pub fn is_true(self) -> bool {
        matches!(self.nodes[self.at], Node::Bool(true))
    }

    /// The index of the node after this value and everything inside it.
    fn next(self) -> usize {
        match self.nodes[self.at] {
            Node::Array { end } | Node::Object { end } => end as usize,
            _ => self.at + 1,
        }
    }
}

/// An array's items, in order.
#[derive(Clone, Copy)]
pub(crate) struct Array<'v> {
    nodes: &'v [Node<'v>],
    start: usize,
    end: usize,
}

impl<'v> Array<'v> {
    pub fn iter(self) -> impl Iterator<Item = Value<'v>> {
        let nodes = self.nodes;
        let mut at = self.start;
        let end = self.end;
        std::iter::from_fn(move || {
            (at < end).then(|| {
                let item = Value { nodes, at };
                at = item.next();
                item
            })
        })
    }

    pub fn first(self) -> Option<Value<'v>> {
        self.iter().next()
    }
}

/// An object's members, in document order; a repeated name is seen as often as it is written.
#[derive(Clone, Copy)]
pub(crate) struct Object<'v> {
    nodes: &'v [Node<'v>],
    start: usize,
    end: usize,
}

impl<'v> Object<'v> {
    pub fn iter(self) -> impl Iterator<Item = (&'v str, Value<'v>)> {
        let nodes = self.nodes;
        let mut at = self.start;
        let end = self.end;
        std::iter::from_fn(move || {
            (at < end).then(|| {
                let key = match &nodes[at] {
                    Node::Str(key) => key.as_ref(),
                    _ => unreachable!("an object's members start with their name"),
                };
                let value = Value { nodes, at: at + 1 };
                at = value.next();
                (key, value)
            })
        })
    }

    pub fn values(self) -> impl Iterator<Item = Value<'v>> {
        self.iter().map(|(_, value)| value)
    }

    /// A member by name in either casing: the first name that matches, and when that exact name is repeated its
    /// last value, as serde_json's map (and Python's and JavaScript's parsers) keep it.
    pub fn get_ci(self, key: &str) -> Option<Value<'v>> {
        let mut members = self.iter();
        let (name, mut value) = members.find(|(name, _)| name.eq_ignore_ascii_case(key))?;
        for (other, later) in members {
            if other == name {
                value = later;
            }
        }
        Some(value)
    }
}

/// Appends the value it is given to the node list.
struct Append<'t, 'a>(&'t mut Vec<Node<'a>>);

impl Append<'_, '_> {
    /// Ends the container opened at `start`.
    fn close(self, start: usize) {
        let end = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        match &mut self.0[start] {
            Node::Array { end: e } | Node::Object { end: e } => *e = end,
            _ => unreachable!("close is only called on a container"),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Append<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Append<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.push(Node::Null);
        Ok(())
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.push(Node::Bool(v));
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(Node::Number(Some(v)));
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(Node::Number(i64::try_from(v).ok()));
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.0.push(Node::Number(None));
        Ok(())
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.0.push(Node::Str(Cow::Borrowed(v)));
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push(Node::Str(Cow::Owned(v.to_owned())));
        Ok(())
    }

    fn visit_string<E>(self, v: String) -> Result<(), E> {
        self.0.push(Node::Str(Cow::Owned(v)));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let start = self.0.len();
        self.0.push(Node::Array { end: 0 });
        while seq.next_element_seed(Append(self.0))?.is_some() {}
        self.close(start);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let start = self.0.len();
        self.0.push(Node::Object { end: 0 });
        while map.next_key_seed(Append(self.0))?.is_some() {
            map.next_value_seed(Append(self.0))?;
        }
        self.close(start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(value: Value<'_>) -> String {
        match value.kind() {
            Kind::Null => "null".into(),
            Kind::Bool => value.is_true().to_string(),
            Kind::Number(n) => n.map_or("num".into(), |n| n.to_string()),
            Kind::Str(s) => format!("{s:?}"),
            Kind::Array(a) => format!("[{}]", a.iter().map(words).collect::<Vec<_>>().join(",")),
            Kind::Object(o) => {
                format!("{{{}}}", o.iter().map(|(k, v)| format!("{k:?}:{}", words(v))).collect::<Vec<_>>().join(","))
            }
        }
    }

    #[test]
    fn nested_values_read_back_in_order() {
        let text = r#"{"b": [1, {"x": null}, [], "s\u00e9"], "a": {"y": true, "z": -2.5}, "n": 18446744073709551615}"#;
        let doc = Document::parse(text).unwrap();
        assert_eq!(words(doc.root()), r#"{"b":[1,{"x":null},[],"sé"],"a":{"y":true,"z":num},"n":num}"#);
    }

    #[test]
    fn lookups_ignore_case_and_take_the_last_of_a_repeated_name() {
        let doc = Document::parse(r#"{"Message": "1", "message": "2", "Message": "3"}"#).unwrap();
        let root = doc.root().as_object().unwrap();
        assert_eq!(root.get_ci("MESSAGE").and_then(Value::as_str), Some("3"));
        assert_eq!(root.iter().count(), 3);
        assert!(root.get_ci("other").is_none());
    }

    #[test]
    fn bad_documents_fail_as_serde_json_fails() {
        for text in ["{\"a\": 1", "[1,]", "{} x", "nul"] {
            assert_eq!(
                Document::parse(text).err().map(|e| e.classify()),
                serde_json::from_str::<serde_json::Value>(text).err().map(|e| e.classify()),
                "{text}"
            );
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(Document::parse(&deep).is_err(), "serde_json's recursion limit still holds");
    }
}
