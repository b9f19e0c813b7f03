//! Numbers as ESC keeps them: exact decimal text, never a lossy float at rest.
//!
//! Integers keep every digit; floats are written the way Go's `strconv.FormatFloat(f, 'g',
//! -1, 64)` writes them (`2.50` → `2.5`, `1.0` → `1`, `1e6` → `1e+06`), which is what an ESC
//! user sees in `esc env open` output and in interpolated strings.

use std::fmt;

/// A number, held as its canonical decimal text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Number(String);

impl Number {
    /// An integer.
    pub fn from_i64(v: i64) -> Number {
        Number(v.to_string())
    }

    /// An unsigned integer.
    pub fn from_u64(v: u64) -> Number {
        Number(v.to_string())
    }

    /// A float, formatted as Go's `%g` with shortest precision.
    pub fn from_f64(v: f64) -> Number {
        Number(format_g(v))
    }

    /// A float, formatted as Go's `'f'` with shortest precision (used by `fn::fromYAML`).
    pub fn from_f64_fixed(v: f64) -> Number {
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e21 {
            Number(format!("{v:.0}"))
        } else {
            Number(format!("{v}"))
        }
    }

    /// Trusts `text` to be valid JSON number text (from a JSON document).
    pub(crate) fn from_json_text(text: &str) -> Number {
        Number(text.to_owned())
    }

    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as a float (lossy for very large integers).
    pub fn as_f64(&self) -> Option<f64> {
        self.0.parse().ok()
    }

    /// The value as an integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }

    /// The value as a JSON number: an integer when it is one, else a finite float; `None`
    /// when JSON cannot hold it (sent as its text instead).
    pub fn to_json(&self) -> Option<serde_json::Number> {
        self.as_i64()
            .map(Into::into)
            .or_else(|| self.0.parse::<u64>().ok().map(Into::into))
            .or_else(|| self.as_f64().and_then(serde_json::Number::from_f64))
    }

    /// Whether the text is valid JSON (`+Inf` and `NaN` are not).
    pub fn is_json(&self) -> bool {
        self.0
            .chars()
            .next()
            .is_some_and(|c| c == '-' || c.is_ascii_digit())
            && self.as_f64().is_some_and(f64::is_finite)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`.
pub fn format_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde[-]x".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    } else if exp >= 0 {
        let point = exp as usize + 1;
        if digits.len() <= point {
            format!("{sign}{digits}{}", "0".repeat(point - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point], &digits[point..])
        }
    } else {
        format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::format_g;

    #[test]
    fn formats_like_go_g() {
        for (v, s) in [
            (1.0, "1"),
            (2.5, "2.5"),
            (1000.0, "1000"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e300, "1.5e+300"),
            (-0.5, "-0.5"),
            (3.25159, "3.25159"),
            (-2e-7, "-2e-07"),
            (100000.5, "100000.5"),
        ] {
            assert_eq!(format_g(v), s, "{v}");
        }
    }
}
