//! Trust policies of a CI issuer, and the decision they make on a verified token's claims.
//!
//! A policy names the kind of token it concerns (team, organization, personal), whom that
//! token acts as (a team, a role, a user), and rules: claim name → glob over the whole claim
//! value. A matching `deny` wins over everything; otherwise the first matching `allow` decides;
//! with neither, the exchange is refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Decision {
    Allow,
    Deny,
}

/// The kind of Tessera token a policy concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TokenType {
    Team,
    Organization,
    Personal,
}

impl TokenType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenType::Team => "team",
            TokenType::Organization => "organization",
            TokenType::Personal => "personal",
        }
    }

    /// The RFC 8693 token type URN of a Tessera token of this kind.
    pub(crate) fn urn(self) -> String {
        format!("{TOKEN_TYPE_PREFIX}{}", self.as_str())
    }
}

/// `requested_token_type` values are this prefix followed by the kind.
pub(crate) const TOKEN_TYPE_PREFIX: &str = "urn:pulumi:token-type:access_token:";

/// One policy, as registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Policy {
    pub(crate) decision: Decision,
    pub(crate) token_type: TokenType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) team_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) role_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_login: Option<String>,
    /// Organization tokens only: `["admin"]` lets the exchange issue an admin token when the
    /// request's scope is `admin`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) authorized_permissions: Vec<String>,
    #[serde(default)]
    pub(crate) rules: BTreeMap<String, String>,
}

/// Why a set of policies is refused at registration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("policy {index}: {message}")]
pub(crate) struct PolicyError {
    pub(crate) index: usize,
    pub(crate) message: String,
}

/// Parses and checks the `policies` of a registration.
pub(crate) fn parse_policies(value: &Json) -> Result<Vec<Policy>, PolicyError> {
    let items = value.as_array().ok_or(PolicyError {
        index: 0,
        message: "policies must be a list".into(),
    })?;
    if items.len() > 100 {
        return Err(PolicyError {
            index: 100,
            message: "at most 100 policies per issuer".into(),
        });
    }
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let err = |message: String| PolicyError { index, message };
        let p: Policy = serde_json::from_value(item.clone()).map_err(|e| err(e.to_string()))?;
        let allow = p.decision == Decision::Allow;
        match p.token_type {
            TokenType::Team => {
                if allow && p.team_name.is_none() {
                    return Err(err("an allow policy for team tokens needs teamName".into()));
                }
                if p.user_login.is_some() || p.role_id.is_some() {
                    return Err(err("team policies name a teamName only".into()));
                }
            }
            TokenType::Personal => {
                if allow && p.user_login.is_none() {
                    return Err(err(
                        "an allow policy for personal tokens needs userLogin".into()
                    ));
                }
                if p.team_name.is_some() || p.role_id.is_some() {
                    return Err(err("personal policies name a userLogin only".into()));
                }
            }
            TokenType::Organization => {
                if p.team_name.is_some() || p.user_login.is_some() {
                    return Err(err(
                        "organization policies name a roleId at most, not a team or user".into(),
                    ));
                }
            }
        }
        if let Some(bad) = p.authorized_permissions.iter().find(|x| *x != "admin") {
            return Err(err(format!(
                "authorizedPermissions may only hold \"admin\", not {bad:?}"
            )));
        }
        if !p.authorized_permissions.is_empty()
            && (p.token_type != TokenType::Organization || p.role_id.is_some())
        {
            return Err(err(
                "authorizedPermissions applies to organization policies without a roleId".into(),
            ));
        }
        for (claim, glob) in &p.rules {
            if claim.is_empty() || claim.len() > 200 || glob.len() > 1000 {
                return Err(err(format!(
                    "rule {claim:?}: claim names are 1 to 200 characters, globs at most 1000"
                )));
            }
        }
        out.push(p);
    }
    Ok(out)
}

/// Whom the requested token acts as, from `requested_token_type` and `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Team(String),
    User(String),
    /// An organization token: with the role named, as an admin, or (neither) as decided by
    /// the policy.
    Organization {
        role_id: Option<String>,
        admin: bool,
    },
}

impl Target {
    pub(crate) fn token_type(&self) -> TokenType {
        match self {
            Target::Team(_) => TokenType::Team,
            Target::User(_) => TokenType::Personal,
            Target::Organization { .. } => TokenType::Organization,
        }
    }

    /// Parses `scope` for a requested kind: `team:NAME`, `user:LOGIN`, and for organization
    /// tokens nothing, `admin` or `role:ID`.
    pub(crate) fn parse(kind: TokenType, scope: &str) -> Result<Target, String> {
        let scopes: Vec<&str> = scope
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let named = |prefix: &str, what: &str| -> Result<String, String> {
            match scopes.as_slice() {
                [one] => one
                    .strip_prefix(prefix)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        format!("scope must be {prefix}{what} for {} tokens", kind.as_str())
                    }),
                _ => Err(format!(
                    "scope must be exactly {prefix}{what} for {} tokens",
                    kind.as_str()
                )),
            }
        };
        match kind {
            TokenType::Team => named("team:", "NAME").map(Target::Team),
            TokenType::Personal => named("user:", "LOGIN").map(Target::User),
            TokenType::Organization => match scopes.as_slice() {
                [] => Ok(Target::Organization {
                    role_id: None,
                    admin: false,
                }),
                ["admin"] => Ok(Target::Organization {
                    role_id: None,
                    admin: true,
                }),
                [one] => match one.strip_prefix("role:").filter(|r| !r.is_empty()) {
                    Some(role) => Ok(Target::Organization {
                        role_id: Some(role.to_owned()),
                        admin: false,
                    }),
                    None => Err(
                        "scope must be empty, admin or role:ROLE_ID for organization tokens".into(),
                    ),
                },
                _ => {
                    Err("scope must be empty, admin or role:ROLE_ID for organization tokens".into())
                }
            },
        }
    }
}

/// What the policies decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Policy `index` allows; the token acts as `grant`.
    Allowed {
        index: usize,
        grant: Target,
        /// The claims its rules looked at, with their values.
        claims: Map<String, Json>,
    },
    /// Policy `index` denies.
    DeniedByPolicy {
        index: usize,
        claims: Map<String, Json>,
    },
    /// No policy allows this token for this target.
    NoMatch,
}

/// Decides on verified `claims` for the `requested` target.
pub(crate) fn decide(
    policies: &[Policy],
    claims: &Map<String, Json>,
    requested: &Target,
) -> Verdict {
    let kind = requested.token_type();
    let relevant = || {
        policies
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.token_type == kind)
    };
    for (index, p) in relevant().filter(|(_, p)| p.decision == Decision::Deny) {
        if deny_covers(p, requested) && rules_match(&p.rules, claims) {
            return Verdict::DeniedByPolicy {
                index,
                claims: decisive(&p.rules, claims),
            };
        }
    }
    for (index, p) in relevant().filter(|(_, p)| p.decision == Decision::Allow) {
        let Some(grant) = allow_grants(p, requested) else {
            continue;
        };
        if rules_match(&p.rules, claims) {
            return Verdict::Allowed {
                index,
                grant,
                claims: decisive(&p.rules, claims),
            };
        }
    }
    Verdict::NoMatch
}

/// A deny policy covers every target of its kind unless it names one.
fn deny_covers(p: &Policy, requested: &Target) -> bool {
    match requested {
        Target::Team(t) => p.team_name.as_ref().is_none_or(|n| n == t),
        Target::User(u) => p.user_login.as_ref().is_none_or(|n| n == u),
        Target::Organization { role_id, .. } => {
            p.role_id.is_none() || p.role_id.as_ref() == role_id.as_ref()
        }
    }
}

/// The target an allow policy grants for a request, if it grants it at all.
fn allow_grants(p: &Policy, requested: &Target) -> Option<Target> {
    match requested {
        Target::Team(t) => (p.team_name.as_deref() == Some(t)).then(|| requested.clone()),
        Target::User(u) => (p.user_login.as_deref() == Some(u)).then(|| requested.clone()),
        Target::Organization { role_id, admin } => {
            let may_admin = p.authorized_permissions.iter().any(|x| x == "admin");
            match (role_id, &p.role_id) {
                // The request names a role: only a policy for that role grants it.
                (Some(r), Some(pr)) if r == pr => Some(requested.clone()),
                (Some(_), _) => None,
                // No role named: the policy's role, or a plain member (admin if asked and allowed).
                (None, Some(pr)) => (!admin).then(|| Target::Organization {
                    role_id: Some(pr.clone()),
                    admin: false,
                }),
                (None, None) => (!admin || may_admin).then(|| requested.clone()),
            }
        }
    }
}

fn rules_match(rules: &BTreeMap<String, String>, claims: &Map<String, Json>) -> bool {
    rules.iter().all(|(claim, glob)| {
        claims
            .get(claim)
            .and_then(claim_text)
            .is_some_and(|text| glob_match(glob, &text))
    })
}

/// The claims a policy's rules looked at, for the audit entry.
fn decisive(rules: &BTreeMap<String, String>, claims: &Map<String, Json>) -> Map<String, Json> {
    rules
        .keys()
        .map(|k| (k.clone(), claims.get(k).cloned().unwrap_or(Json::Null)))
        .collect()
}

/// The text a rule matches a claim against: strings as they are, numbers and booleans as
/// JSON writes them; lists, objects and null never match.
fn claim_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whole-value glob: `*` matches any run of characters (also none), `?` exactly one.
pub(crate) fn glob_match(glob: &str, text: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut gi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it currently stands for.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || (g[gi] != '*' && g[gi] == t[ti])) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ti));
            gi += 1;
        } else if let Some((sg, st)) = star {
            gi = sg + 1;
            ti = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Json) -> Map<String, Json> {
        v.as_object().cloned().unwrap()
    }

    fn policies(v: Json) -> Vec<Policy> {
        parse_policies(&v).unwrap()
    }

    #[test]
    fn globs_match_whole_values() {
        assert!(glob_match(
            "repo:acme/*",
            "repo:acme/app:ref:refs/heads/main"
        ));
        assert!(glob_match("refs/heads/main", "refs/heads/main"));
        assert!(!glob_match("refs/heads/main", "refs/heads/main2"));
        assert!(!glob_match("main", "refs/heads/main"));
        assert!(glob_match("v?.*", "v1.2"));
        assert!(!glob_match("v?", "v12"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("?", ""));
        assert!(glob_match("a*b*c", "aXXbYYbc"));
        assert!(!glob_match("a*b*c", "aXXbYYbd"));
        assert!(glob_match("é*", "été"));
    }

    #[test]
    fn a_missing_or_structured_claim_never_matches() {
        let p = policies(
            json!([{"decision":"allow","tokenType":"team","teamName":"ci","rules":{"environment":"*"}}]),
        );
        let t = Target::Team("ci".into());
        assert_eq!(decide(&p, &claims(json!({})), &t), Verdict::NoMatch);
        assert_eq!(
            decide(&p, &claims(json!({"environment": null})), &t),
            Verdict::NoMatch
        );
        assert_eq!(
            decide(&p, &claims(json!({"environment": ["prod"]})), &t),
            Verdict::NoMatch
        );
        assert!(matches!(
            decide(&p, &claims(json!({"environment": "prod"})), &t),
            Verdict::Allowed { .. }
        ));
        let p = policies(
            json!([{"decision":"allow","tokenType":"team","teamName":"ci","rules":{"run_attempt":"1"}}]),
        );
        assert!(matches!(
            decide(&p, &claims(json!({"run_attempt": 1})), &t),
            Verdict::Allowed { .. }
        ));
    }

    #[test]
    fn deny_wins_and_no_allow_means_deny() {
        let p = policies(json!([
            {"decision":"allow","tokenType":"team","teamName":"ci","rules":{"repository":"acme/*"}},
            {"decision":"deny","tokenType":"team","rules":{"ref":"refs/heads/experiment-*"}},
        ]));
        let t = Target::Team("ci".into());
        let main = claims(json!({"repository":"acme/app","ref":"refs/heads/main"}));
        match decide(&p, &main, &t) {
            Verdict::Allowed {
                index,
                grant,
                claims,
            } => {
                assert_eq!(index, 0);
                assert_eq!(grant, t);
                assert_eq!(Json::Object(claims), json!({"repository":"acme/app"}));
            }
            v => panic!("{v:?}"),
        }
        let exp = claims(json!({"repository":"acme/app","ref":"refs/heads/experiment-1"}));
        assert!(matches!(
            decide(&p, &exp, &t),
            Verdict::DeniedByPolicy { index: 1, .. }
        ));
        let other = claims(json!({"repository":"evil/app","ref":"refs/heads/main"}));
        assert_eq!(decide(&p, &other, &t), Verdict::NoMatch);
        // Another team than the policy names.
        assert_eq!(
            decide(&p, &main, &Target::Team("ops".into())),
            Verdict::NoMatch
        );
        // Another kind of token.
        assert_eq!(
            decide(&p, &main, &Target::User("alice".into())),
            Verdict::NoMatch
        );
    }

    #[test]
    fn organization_tokens_take_the_policys_role_and_admin_only_when_authorized() {
        let p = policies(json!([
            {"decision":"allow","tokenType":"organization","roleId":"r1","rules":{"sub":"repo:acme/deploy:*"}},
            {"decision":"allow","tokenType":"organization","rules":{"sub":"repo:acme/plain:*"}},
        ]));
        let deploy = claims(json!({"sub":"repo:acme/deploy:ref:refs/heads/main"}));
        let plain = claims(json!({"sub":"repo:acme/plain:ref:refs/heads/main"}));
        let none = Target::Organization {
            role_id: None,
            admin: false,
        };
        let admin = Target::Organization {
            role_id: None,
            admin: true,
        };
        let r1 = Target::Organization {
            role_id: Some("r1".into()),
            admin: false,
        };
        let r2 = Target::Organization {
            role_id: Some("r2".into()),
            admin: false,
        };
        assert!(
            matches!(decide(&p, &deploy, &none), Verdict::Allowed { grant, .. } if grant == r1)
        );
        assert!(matches!(decide(&p, &deploy, &r1), Verdict::Allowed { grant, .. } if grant == r1));
        assert_eq!(decide(&p, &deploy, &r2), Verdict::NoMatch);
        assert_eq!(decide(&p, &deploy, &admin), Verdict::NoMatch);
        assert!(
            matches!(decide(&p, &plain, &none), Verdict::Allowed { grant, .. } if grant == none)
        );
        assert_eq!(decide(&p, &plain, &admin), Verdict::NoMatch);
        let p = policies(
            json!([{"decision":"allow","tokenType":"organization","authorizedPermissions":["admin"],"rules":{}}]),
        );
        assert!(
            matches!(decide(&p, &plain, &admin), Verdict::Allowed { grant, .. } if grant == admin)
        );
    }

    #[test]
    fn registration_refuses_incomplete_or_unknown_policy_fields() {
        for bad in [
            json!({}),
            json!([{"decision":"maybe","tokenType":"team","teamName":"ci"}]),
            json!([{"decision":"allow","tokenType":"team"}]),
            json!([{"decision":"allow","tokenType":"personal"}]),
            json!([{"decision":"allow","tokenType":"organization","teamName":"ci"}]),
            json!([{"decision":"allow","tokenType":"team","teamName":"ci","rules":{"sub":1}}]),
            json!([{"decision":"allow","tokenType":"team","teamName":"ci","extra":true}]),
            json!([{"decision":"allow","tokenType":"team","teamName":"ci","authorizedPermissions":["admin"]}]),
        ] {
            assert!(parse_policies(&bad).is_err(), "{bad}");
        }
        let deny_all = json!([{"decision":"deny","tokenType":"team"}]);
        assert_eq!(parse_policies(&deny_all).unwrap().len(), 1);
    }

    #[test]
    fn scopes_name_the_target() {
        assert_eq!(
            Target::parse(TokenType::Team, "team:ci"),
            Ok(Target::Team("ci".into()))
        );
        assert!(Target::parse(TokenType::Team, "").is_err());
        assert!(Target::parse(TokenType::Team, "team:a,team:b").is_err());
        assert!(Target::parse(TokenType::Team, "user:alice").is_err());
        assert_eq!(
            Target::parse(TokenType::Personal, "user:alice"),
            Ok(Target::User("alice".into()))
        );
        assert_eq!(
            Target::parse(TokenType::Organization, ""),
            Ok(Target::Organization {
                role_id: None,
                admin: false
            })
        );
        assert_eq!(
            Target::parse(TokenType::Organization, "admin"),
            Ok(Target::Organization {
                role_id: None,
                admin: true
            })
        );
        assert_eq!(
            Target::parse(TokenType::Organization, "role:r1"),
            Ok(Target::Organization {
                role_id: Some("r1".into()),
                admin: false
            })
        );
        assert!(Target::parse(TokenType::Organization, "team:ci").is_err());
    }
}
