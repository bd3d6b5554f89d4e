//! A minimal JSON writer: objects built field by field into one line, strings escaped per
//! RFC 8259.

use std::fmt::Write as _;

/// Appends `s` to `out` as a JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON object being written.
#[derive(Debug)]
pub struct Object {
    buf: String,
}

impl Default for Object {
    fn default() -> Self {
        Object::new()
    }
}

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Object {
            buf: String::from("{"),
        }
    }

    fn key(&mut self, key: &str) -> &mut String {
        if self.buf.len() > 1 {
            self.buf.push(',');
        }
        write_str(&mut self.buf, key);
        self.buf.push(':');
        &mut self.buf
    }

    /// Adds a string field.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        let buf = self.key(key);
        write_str(buf, value);
        self
    }

    /// Adds a string field, or `null`.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// Adds an integer field.
    pub fn int(&mut self, key: &str, value: impl Into<i128>) -> &mut Self {
        let value: i128 = value.into();
        let buf = self.key(key);
        let _ = write!(buf, "{value}");
        self
    }

    /// Adds an integer field, or `null`.
    pub fn opt_int(&mut self, key: &str, value: Option<impl Into<i128>>) -> &mut Self {
        match value {
            Some(v) => self.int(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// Adds a boolean field.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// Adds a field whose value is already JSON text (a nested object or array).
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key).push_str(json);
        self
    }

    /// The finished object's text.
    pub fn finish(&mut self) -> String {
        let mut s = std::mem::replace(&mut self.buf, String::from("{"));
        s.push('}');
        s
    }
}

/// Joins finished JSON values into an array.
pub fn array(items: &[String]) -> String {
    let mut s = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(item);
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_strings() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\n\u{1}\u{7f}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001\\u007fé\"");
    }

    #[test]
    fn builds_objects() {
        let mut o = Object::new();
        o.int("a", -1i64)
            .str("b", "x")
            .bool("c", true)
            .opt_int("d", None::<i64>);
        o.raw("e", &array(&["1".into(), "2".into()]));
        assert_eq!(
            o.finish(),
            r#"{"a":-1,"b":"x","c":true,"d":null,"e":[1,2]}"#
        );
        assert_eq!(Object::new().finish(), "{}");
    }
}
