//! Environment permission levels and the scopes custom roles are made of.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A permission level on an environment. Levels are ordered: each includes the ones below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// No access; the environment is not even visible.
    None,
    /// The definition with secrets as ciphertext, versions, tags, listing.
    Read,
    /// Read, plus open sessions, decryption and provider calls: the sensitive permission.
    Open,
    /// Open, plus update, tag and rollback.
    Write,
    /// Write, plus delete and permission management.
    Admin,
}

/// A permission name that is not one of the levels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}: expected none, read, open, write or admin")]
pub struct PermissionError(pub String);

impl Permission {
    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::None => "none",
            Permission::Read => "read",
            Permission::Open => "open",
            Permission::Write => "write",
            Permission::Admin => "admin",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = PermissionError;
    fn from_str(s: &str) -> Result<Self, PermissionError> {
        Ok(match s {
            "none" => Permission::None,
            "read" => Permission::Read,
            "open" => Permission::Open,
            "write" => Permission::Write,
            "admin" => Permission::Admin,
            _ => return Err(PermissionError(s.to_owned())),
        })
    }
}

/// A named action that custom roles grant, such as `environment:open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scope {
    /// Read definitions, revisions and tags.
    EnvironmentRead,
    /// Open environments: decrypt secrets and call providers.
    EnvironmentOpen,
    /// Update definitions, roll back, retract.
    EnvironmentWrite,
    /// Delete environments.
    EnvironmentDelete,
    /// Create, move and remove revision and environment tags.
    EnvironmentTag,
    /// Rotate secrets through rotators.
    EnvironmentRotate,
    /// Manage teams and their members and grants.
    TeamManage,
    /// Manage roles and permission sets.
    RoleManage,
    /// Create organization and team tokens.
    TokenCreate,
    /// Read the audit log.
    AuditLogRead,
    /// Manage trusted OIDC issuers.
    OidcIssuerManage,
}

/// A scope name that Tessera does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}")]
pub struct ScopeError(pub String);

impl Scope {
    /// Every scope, in catalog order.
    pub const ALL: [Scope; 11] = [
        Scope::EnvironmentRead,
        Scope::EnvironmentOpen,
        Scope::EnvironmentWrite,
        Scope::EnvironmentDelete,
        Scope::EnvironmentTag,
        Scope::EnvironmentRotate,
        Scope::TeamManage,
        Scope::RoleManage,
        Scope::TokenCreate,
        Scope::AuditLogRead,
        Scope::OidcIssuerManage,
    ];

    /// The scope's name, e.g. `environment:open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::EnvironmentRead => "environment:read",
            Scope::EnvironmentOpen => "environment:open",
            Scope::EnvironmentWrite => "environment:write",
            Scope::EnvironmentDelete => "environment:delete",
            Scope::EnvironmentTag => "environment:tag",
            Scope::EnvironmentRotate => "environment:rotate",
            Scope::TeamManage => "team:manage",
            Scope::RoleManage => "role:manage",
            Scope::TokenCreate => "token:create",
            Scope::AuditLogRead => "audit_log:read",
            Scope::OidcIssuerManage => "oidc_issuer:manage",
        }
    }

    /// A one-line description for the scopes catalog.
    pub fn description(self) -> &'static str {
        match self {
            Scope::EnvironmentRead => {
                "Read environment definitions (secrets as ciphertext), revisions and tags"
            }
            Scope::EnvironmentOpen => "Open environments: decrypt secrets and call providers",
            Scope::EnvironmentWrite => {
                "Update environment definitions, roll back and retract revisions"
            }
            Scope::EnvironmentDelete => "Delete environments",
            Scope::EnvironmentTag => "Create, move and remove revision and environment tags",
            Scope::EnvironmentRotate => "Rotate secrets held by environments",
            Scope::TeamManage => "Manage teams, their members and grants",
            Scope::RoleManage => "Manage custom roles and permission sets",
            Scope::TokenCreate => "Create organization and team access tokens",
            Scope::AuditLogRead => "Read and export the audit log",
            Scope::OidcIssuerManage => "Manage trusted OIDC issuers and their policies",
        }
    }

    /// The environment permission level this scope implies, if it is an environment scope.
    pub fn implied_permission(self) -> Option<Permission> {
        match self {
            Scope::EnvironmentRead => Some(Permission::Read),
            Scope::EnvironmentOpen => Some(Permission::Open),
            Scope::EnvironmentWrite | Scope::EnvironmentTag | Scope::EnvironmentRotate => {
                Some(Permission::Write)
            }
            Scope::EnvironmentDelete => Some(Permission::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, ScopeError> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| ScopeError(s.to_owned()))
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered() {
        assert!(Permission::None < Permission::Read);
        assert!(Permission::Read < Permission::Open);
        assert!(Permission::Open < Permission::Write);
        assert!(Permission::Write < Permission::Admin);
    }

    #[test]
    fn scopes_round_trip_by_name() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
        assert!("environment:fly".parse::<Scope>().is_err());
    }
}
