//! Writing JSON straight into a byte buffer, with the same escaping as `serde_json` (so a
//! value written here and the same value serialised by serde give the same bytes). Plans of
//! millions of invoices are written this way: no intermediate `String` per field or reason.

use std::fmt;

/// How each byte is escaped: 0 = as is, `u` = `\u00XX`, otherwise `\` + that byte.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends the contents of a JSON string (without the quotes) for `s`.
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A `fmt::Write` that escapes what it is given into a JSON string's contents, so that a
/// `Display` value (a reason) is written into the output without an intermediate `String`.
pub(crate) struct Escaped<'v>(pub(crate) &'v mut Vec<u8>);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// One JSON object being written, key by key, in the compact layout of `serde_json::to_writer`.
pub(crate) struct Obj<'v> {
    pub(crate) out: &'v mut Vec<u8>,
    first: bool,
}

impl<'v> Obj<'v> {
    pub(crate) fn begin(out: &'v mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Writes `"name":` (with the comma before it when needed).
    pub(crate) fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub(crate) fn str(&mut self, name: &str, value: &str) {
        let out = self.key(name);
        string(out, value);
    }

    pub(crate) fn opt_str(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(v) => self.str(name, v),
            None => self.key(name).extend_from_slice(b"null"),
        }
    }

    /// A string field whose text is a `Display` value, escaped on the fly.
    pub(crate) fn display(&mut self, name: &str, value: &dyn fmt::Display) {
        let out = self.key(name);
        out.push(b'"');
        let _ = fmt::write(&mut Escaped(out), format_args!("{value}"));
        out.push(b'"');
    }

    pub(crate) fn str_list<'s>(&mut self, name: &str, values: impl IntoIterator<Item = &'s str>) {
        let out = self.key(name);
        out.push(b'[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, v);
        }
        out.push(b']');
    }

    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// Appends `s` as a quoted JSON string.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn same_escaping_as_serde_json(s in any::<String>()) {
            let mut out = Vec::new();
            string(&mut out, &s);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn control_characters_quotes_and_backslashes() {
        let s = "a\"b\\c\n\t\r\u{8}\u{c}\u{1}\u{1f}é€";
        let mut out = Vec::new();
        string(&mut out, s);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap());
    }
}
