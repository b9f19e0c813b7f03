//! Masking secret values in a child process's output: exact matches and their base64,
//! URL-encoded and JSON-escaped forms are replaced by `[secret]`, the rest of the line kept.

use std::io::{BufRead, Write};

use base64::Engine as _;
use tessera_lang::{Value, ValueKind};

/// Every secret leaf of `v` as text, longest first.
pub fn secret_strings(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(v, false, &mut out);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

fn collect(v: &Value, inherited: bool, out: &mut Vec<String>) {
    let secret = inherited || v.secret;
    match &v.kind {
        ValueKind::Array(a) => a.iter().for_each(|x| collect(x, secret, out)),
        ValueKind::Object(o) => o.values().for_each(|x| collect(x, secret, out)),
        _ if secret && !v.unknown => {
            let text = v.to_interpolated_string(false);
            if !text.is_empty() {
                out.push(text);
            }
        }
        _ => {}
    }
}

/// Replaces secrets and their encoded forms.
pub struct Masker {
    patterns: Vec<Vec<u8>>,
}

impl Masker {
    /// A masker for these secrets. Very short secrets (under 3 bytes) are not masked: they
    /// would mangle ordinary output without hiding anything.
    pub fn new(secrets: &[String]) -> Masker {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for s in secrets {
            let mut forms = vec![s.clone()];
            forms.extend(s.lines().map(str::to_owned));
            forms.push(base64::engine::general_purpose::STANDARD.encode(s));
            forms.push(base64::engine::general_purpose::STANDARD_NO_PAD.encode(s));
            forms.push(url_encode(s));
            let json = serde_json::to_string(s).unwrap_or_default();
            forms.push(json.trim_matches('"').to_owned());
            for f in forms {
                if f.len() >= 3 && !patterns.iter().any(|p| p == f.as_bytes()) {
                    patterns.push(f.into_bytes());
                }
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        Masker { patterns }
    }

    /// Masks one chunk of output.
    pub fn mask(&self, line: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(line.len());
        let mut i = 0;
        'outer: while i < line.len() {
            for p in &self.patterns {
                if line[i..].starts_with(p) {
                    out.extend_from_slice(b"[secret]");
                    i += p.len();
                    continue 'outer;
                }
            }
            out.push(line[i]);
            i += 1;
        }
        out
    }

    /// Copies `from` to `to` line by line, masked.
    pub fn pipe(&self, from: impl std::io::Read, mut to: impl Write) -> std::io::Result<()> {
        let mut reader = std::io::BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                return to.flush();
            }
            to.write_all(&self.mask(&buf))?;
            to.flush()?;
        }
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_form_and_keeps_the_line() {
        let m = Masker::new(&["p@ss w\"rd".to_owned()]);
        let line = b"pw=p@ss w\"rd b64=cEBzcyB3InJk url=p%40ss%20w%22rd json=p@ss w\\\"rd end\n";
        assert_eq!(
            String::from_utf8(m.mask(line)).unwrap(),
            "pw=[secret] b64=[secret] url=[secret] json=[secret] end\n"
        );
    }
}
