//! A small JSON reader for `fn::fromJSON` that keeps numbers exactly as written, as ESC does.

use std::collections::BTreeMap;

use crate::number::Number;
use crate::value::{Value, ValueKind};

const MAX_DEPTH: usize = 128;

/// Parses the first JSON value of `s` (trailing text is ignored, as Go's decoder does).
pub fn parse(s: &str) -> Result<Value, String> {
    let mut p = Reader {
        b: s.as_bytes(),
        i: 0,
    };
    p.ws();
    if p.i >= p.b.len() {
        return Err("unexpected EOF".into());
    }
    p.value(0)
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        match self.b.get(self.i) {
            None => "unexpected EOF".into(),
            Some(c) => format!("invalid character {:?} {what}", *c as char),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("exceeded max depth of {MAX_DEPTH}"));
        }
        self.ws();
        let Some(&c) = self.b.get(self.i) else {
            return Err("unexpected EOF".into());
        };
        let kind = match c {
            b'{' => {
                self.i += 1;
                let mut map = BTreeMap::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        if self.b.get(self.i) != Some(&b'"') {
                            return Err(self.err("looking for beginning of object key string"));
                        }
                        let k = self.string()?;
                        self.ws();
                        if self.b.get(self.i) != Some(&b':') {
                            return Err(self.err("after object key"));
                        }
                        self.i += 1;
                        let v = self.value(depth + 1)?;
                        map.insert(k, v);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("after object key:value pair")),
                        }
                    }
                }
                ValueKind::Object(map)
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.err("after array element")),
                        }
                    }
                }
                ValueKind::Array(items)
            }
            b'"' => ValueKind::String(self.string()?),
            b't' if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                ValueKind::Bool(true)
            }
            b'f' if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                ValueKind::Bool(false)
            }
            b'n' if self.b[self.i..].starts_with(b"null") => {
                self.i += 4;
                ValueKind::Null
            }
            b'-' | b'0'..=b'9' => ValueKind::Number(self.number()?),
            _ => return Err(self.err("looking for beginning of value")),
        };
        Ok(Value::new(kind))
    }

    fn number(&mut self) -> Result<Number, String> {
        let start = self.i;
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        let digits = |r: &mut Self| {
            let s = r.i;
            while r.i < r.b.len() && r.b[r.i].is_ascii_digit() {
                r.i += 1;
            }
            r.i - s
        };
        if digits(self) == 0 {
            return Err(self.err("in numeric literal"));
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.err("after decimal point in numeric literal"));
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("in exponent of numeric literal"));
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
        Ok(Number::from_json_text(text))
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.b.len()
                && self.b[self.i] != b'"'
                && self.b[self.i] != b'\\'
                && self.b[self.i] >= 0x20
            {
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?);
            match self.b.get(self.i) {
                None => return Err("unexpected EOF".into()),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let Some(&e) = self.b.get(self.i) else {
                        return Err("unexpected EOF".into());
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi)
                                && self.b[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                char::from_u32(
                                    0x10000
                                        + ((hi - 0xD800) << 10)
                                        + (lo.wrapping_sub(0xDC00) & 0x3FF),
                                )
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(c.unwrap_or('\u{FFFD}'));
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err("in string escape code"));
                        }
                    }
                }
                Some(_) => return Err(self.err("in string literal")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.b.get(self.i..self.i + 4).ok_or("unexpected EOF")?;
        let s = std::str::from_utf8(h).map_err(|e| e.to_string())?;
        let v = u32::from_str_radix(s, 16)
            .map_err(|_| self.err("in \\u hexadecimal character escape"))?;
        self.i += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_number_text_and_reports_errors() {
        let v = super::parse(r#"{"a": 1.0, "b": [true, null, "x\u0041"]} trailing"#).unwrap();
        assert_eq!(v.to_json_compact(), r#"{"a":1.0,"b":[true,null,"xA"]}"#);
        assert!(super::parse("{").unwrap_err().contains("EOF"));
        assert!(super::parse("x").unwrap_err().contains("invalid character"));
    }
}
