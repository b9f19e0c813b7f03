//! Organization, project and environment names, and references to a version of an environment.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// An organization name outside `^[a-zA-Z0-9][a-zA-Z0-9-_]{1,38}[a-zA-Z0-9]$`.
    #[error("invalid organization name {0:?}: use 3 to 40 letters, digits, '-' or '_', starting and ending with a letter or digit")]
    Org(String),
    /// A project name outside `[a-zA-Z0-9-_.]{1,100}`, or `.`, `..`, or starting with `default`.
    #[error("invalid project name {0:?}: use 1 to 100 letters, digits, '-', '_' or '.'; not '.', '..' or starting with 'default'")]
    Project(String),
    /// An environment name outside `[a-zA-Z0-9-_.]{1,100}`, or `.`, `..`, or starting with `open` or `yaml`.
    #[error("invalid environment name {0:?}: use 1 to 100 letters, digits, '-', '_' or '.'; not '.', '..' or starting with 'open' or 'yaml'")]
    Environment(String),
    /// A reference that is not `project/env`, optionally followed by `@version`.
    #[error("invalid environment reference {0:?}: expected PROJECT/ENV[@VERSION]")]
    Reference(String),
    /// A version that is neither a revision number nor a tag name.
    #[error("invalid version {0:?}: expected a revision number or a tag name")]
    Version(String),
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The name as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// An organization name, as the ESC SDKs accept it.
    OrgName
);
name_type!(
    /// A project name: the first half of `project/env`.
    ProjectName
);
name_type!(
    /// An environment name within a project.
    EnvName
);

impl FromStr for OrgName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let chars: Vec<char> = s.chars().collect();
        let ok = (3..=40).contains(&chars.len())
            && chars[0].is_ascii_alphanumeric()
            && chars[chars.len() - 1].is_ascii_alphanumeric()
            && chars
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(OrgName(s.to_owned()))
        } else {
            Err(NameError::Org(s.to_owned()))
        }
    }
}

fn plain_name_ok(s: &str) -> bool {
    (1..=100).contains(&s.len()) && s.chars().all(is_name_char) && s != "." && s != ".."
}

impl FromStr for ProjectName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if plain_name_ok(s) && !s.starts_with("default") {
            Ok(ProjectName(s.to_owned()))
        } else {
            Err(NameError::Project(s.to_owned()))
        }
    }
}

impl FromStr for EnvName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if plain_name_ok(s) && !s.starts_with("open") && !s.starts_with("yaml") {
            Ok(EnvName(s.to_owned()))
        } else {
            Err(NameError::Environment(s.to_owned()))
        }
    }
}

/// An environment within its organization: `project/env`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedEnv {
    /// The project.
    pub project: ProjectName,
    /// The environment within the project.
    pub env: EnvName,
}

impl fmt::Display for QualifiedEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.project, self.env)
    }
}

impl FromStr for QualifiedEnv {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let (p, e) = s
            .split_once('/')
            .ok_or_else(|| NameError::Reference(s.to_owned()))?;
        Ok(QualifiedEnv {
            project: p.parse()?,
            env: e.parse()?,
        })
    }
}

impl Serialize for QualifiedEnv {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for QualifiedEnv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Which revision of an environment: a number, or a tag (`latest` is implicit).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Version {
    /// A revision number, starting at 1.
    Revision(u64),
    /// A revision tag such as `latest` or `stable`.
    Tag(String),
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Revision(n) => write!(f, "{n}"),
            Version::Tag(t) => f.write_str(t),
        }
    }
}

impl FromStr for Version {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        if let Ok(n) = s.parse::<u64>() {
            if n == 0 {
                return Err(NameError::Version(s.to_owned()));
            }
            return Ok(Version::Revision(n));
        }
        if !s.is_empty() && s.len() <= 100 && s.chars().all(is_name_char) {
            Ok(Version::Tag(s.to_owned()))
        } else {
            Err(NameError::Version(s.to_owned()))
        }
    }
}

/// `project/env` with an optional `@version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnvRef {
    /// The environment.
    pub env: QualifiedEnv,
    /// The version asked for; `None` means the latest revision.
    pub version: Option<Version>,
}

impl FromStr for EnvRef {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let (name, version) = match s.split_once('@') {
            Some((n, v)) => (n, Some(v.parse()?)),
            None => (s, None),
        };
        Ok(EnvRef {
            env: name.parse()?,
            version,
        })
    }
}

impl fmt::Display for EnvRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.env),
            None => write!(f, "{}", self.env),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_names_follow_the_sdk_rule() {
        for ok in ["acme", "a-b", "my_org-1", "abc"] {
            assert!(ok.parse::<OrgName>().is_ok(), "{ok}");
        }
        for bad in ["", "ab", "-abc", "abc-", "a b c", &"a".repeat(41)] {
            assert!(bad.parse::<OrgName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn project_and_env_names_refuse_reserved_prefixes() {
        assert!("app".parse::<ProjectName>().is_ok());
        assert!("defaults".parse::<ProjectName>().is_err());
        assert!("..".parse::<ProjectName>().is_err());
        assert!("dev.1".parse::<EnvName>().is_ok());
        assert!("openfutures".parse::<EnvName>().is_err());
        assert!("yamlish".parse::<EnvName>().is_err());
        assert!("a/b".parse::<EnvName>().is_err());
    }

    #[test]
    fn references_carry_versions() {
        let r: EnvRef = "app/dev@3".parse().unwrap();
        assert_eq!(r.version, Some(Version::Revision(3)));
        let r: EnvRef = "app/dev@stable".parse().unwrap();
        assert_eq!(r.to_string(), "app/dev@stable");
        assert!("app/dev@".parse::<EnvRef>().is_err());
        assert!("appdev".parse::<EnvRef>().is_err());
    }

    #[test]
    fn names_deserialize_only_when_valid() {
        assert!(serde_json::from_str::<OrgName>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<OrgName>("\"-x\"").is_err());
    }
}
