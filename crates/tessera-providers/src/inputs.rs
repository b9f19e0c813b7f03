//! Reading a provider's inputs: typed accessors over [`Value`] whose errors name the input
//! (`aws-login: oidc.roleArn must be a string`), and Go-style durations (`1h30m`) as ESC
//! writes them.

use std::time::Duration;

use tessera_lang::{Value, ValueKind};

use crate::error::ProviderError;

/// A view of one input object, remembering its path for messages.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a> {
    provider: &'static str,
    value: &'a Value,
    path: &'a str,
}

impl<'a> Inputs<'a> {
    /// The top-level inputs of a call; they must be an object.
    pub(crate) fn root(provider: &'static str, value: &'a Value) -> Result<Self, ProviderError> {
        if value.as_object().is_none() {
            return Err(ProviderError::InvalidInput {
                provider,
                message: format!("inputs must be an object, not {}", value.type_name()),
            });
        }
        Ok(Inputs {
            provider,
            value,
            path: "",
        })
    }

    /// The input object itself, for shapes the typed accessors do not cover.
    pub(crate) fn value(&self) -> &'a Value {
        self.value
    }

    pub(crate) fn provider(&self) -> &'static str {
        self.provider
    }

    pub(crate) fn invalid(&self, key: &str, what: &str) -> ProviderError {
        ProviderError::InvalidInput {
            provider: self.provider,
            message: format!("{} {what}", self.name(key)),
        }
    }

    fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn field(&self, key: &str) -> Option<&'a Value> {
        self.value
            .get(key)
            .filter(|v| !matches!(v.kind, ValueKind::Null))
    }

    /// A required non-empty string.
    pub(crate) fn string(&self, key: &str) -> Result<&'a str, ProviderError> {
        self.opt_string(key)?
            .ok_or_else(|| self.invalid(key, "is required"))
    }

    /// An optional non-empty string. Numbers are accepted and rendered as written, since
    /// ESC lets `project: 123456789` stand for a string.
    pub(crate) fn opt_string(&self, key: &str) -> Result<Option<&'a str>, ProviderError> {
        match self.field(key) {
            None => Ok(None),
            Some(v) => match &v.kind {
                ValueKind::String(s) if s.is_empty() => Err(self.invalid(key, "must not be empty")),
                ValueKind::String(s) => Ok(Some(s)),
                ValueKind::Number(n) => Ok(Some(n.as_str())),
                _ => Err(self.invalid(key, &format!("must be a string, not {}", v.type_name()))),
            },
        }
    }

    /// An optional boolean.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, ProviderError> {
        match self.field(key) {
            None => Ok(None),
            Some(v) => match v.kind {
                ValueKind::Bool(b) => Ok(Some(b)),
                _ => Err(self.invalid(key, &format!("must be a boolean, not {}", v.type_name()))),
            },
        }
    }

    /// An optional array of strings.
    pub(crate) fn opt_strings(&self, key: &str) -> Result<Option<Vec<String>>, ProviderError> {
        let Some(v) = self.field(key) else {
            return Ok(None);
        };
        let ValueKind::Array(items) = &v.kind else {
            return Err(self.invalid(
                key,
                &format!("must be an array of strings, not {}", v.type_name()),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.as_str() {
                Some(s) => Ok(s.to_owned()),
                None => Err(self.invalid(&format!("{key}[{i}]"), "must be a string")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// An optional nested object.
    pub(crate) fn opt_object(&self, key: &'a str) -> Result<Option<Inputs<'a>>, ProviderError> {
        match self.field(key) {
            None => Ok(None),
            Some(v) if v.as_object().is_some() => Ok(Some(Inputs {
                provider: self.provider,
                value: v,
                path: key,
            })),
            Some(v) => Err(self.invalid(key, &format!("must be an object, not {}", v.type_name()))),
        }
    }

    /// The entries of a required object input, each as a nested view.
    pub(crate) fn entries(
        &self,
        key: &'a str,
    ) -> Result<Vec<(&'a str, Inputs<'a>)>, ProviderError> {
        let obj = self
            .opt_object(key)?
            .ok_or_else(|| self.invalid(key, "is required"))?;
        let Some(map) = obj.value.as_object() else {
            return Err(self.invalid(key, "must be an object"));
        };
        map.iter()
            .map(|(k, v)| {
                if v.as_object().is_none() {
                    return Err(self.invalid(&format!("{key}.{k}"), "must be an object"));
                }
                Ok((
                    k.as_str(),
                    Inputs {
                        provider: self.provider,
                        value: v,
                        path: key,
                    },
                ))
            })
            .collect()
    }

    /// An optional duration, written as Go writes them (`1h`, `90m`, `3600s`) or as a number
    /// of seconds.
    pub(crate) fn opt_duration(&self, key: &str) -> Result<Option<Duration>, ProviderError> {
        match self.field(key) {
            None => Ok(None),
            Some(v) => match &v.kind {
                ValueKind::String(s) => parse_go_duration(s)
                    .map(Some)
                    .map_err(|e| self.invalid(key, &e)),
                ValueKind::Number(n) => n
                    .as_i64()
                    .and_then(|i| u64::try_from(i).ok())
                    .map(|s| Some(Duration::from_secs(s)))
                    .ok_or_else(|| {
                        self.invalid(key, "must be a whole, non-negative number of seconds")
                    }),
                _ => Err(self.invalid(key, "must be a duration such as \"1h\" or \"30m\"")),
            },
        }
    }

    /// The ESC `subjectAttributes` list, if given.
    pub(crate) fn subject_attributes(&self) -> Result<Option<Vec<String>>, ProviderError> {
        self.opt_strings("subjectAttributes")
    }
}

/// Parses a Go duration (`1h`, `1h30m`, `90s`, `1.5h`, `500ms`): one or more numbers, each
/// with a unit `h`, `m`, `s`, `ms`, `us`/`µs` or `ns`. Negative durations are refused.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("must be a duration such as \"1h\" or \"30m\", not {text:?}");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * factor;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "h", "1", "1d", "-1h", "1h-", "abc"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }
}
