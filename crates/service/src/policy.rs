//! Who may do what: principals built from the config, their roles, and IAM-style policy documents
//! (Allow/Deny statements with `*`/`?` wildcards in actions). An explicit Deny always wins.

use std::collections::HashMap;

use model::cloudtrail::{SessionAttributes, SessionContext, SessionIssuer, UserIdentity};
use serde_json::Value;

use crate::config::{Config, PrincipalConfig, Role};

/// An authenticated caller, as recorded in `userIdentity`.
#[derive(Debug, Clone)]
pub struct Principal {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `IAMUser`, `AssumedRole` or `Root`.
    pub principal_type: String,
    pub principal_id: String,
    pub arn: String,
    pub account_id: String,
    pub user_name: Option<String>,
    /// For assumed roles: (role name, role id) of the session issuer.
    pub role_issuer: Option<(String, String)>,
    pub role: Role,
    pub policy: Option<PolicyDocument>,
}

impl Principal {
    pub fn from_config(p: &PrincipalConfig, default_account: &str) -> Principal {
        let account_id = p.account_id.clone().unwrap_or_else(|| default_account.to_string());
        let unique = stable_id(&p.access_key_id);
        let (principal_type, principal_id, arn, user_name, role_issuer) = match p
            .principal_type
            .as_deref()
            .unwrap_or("IAMUser")
        {
            "Root" => ("Root", account_id.clone(), format!("arn:aws:iam::{account_id}:root"), None, None),
            "AssumedRole" => {
                let role = p.role_name.clone().unwrap_or_default();
                let session = p.session_name.clone().unwrap_or_default();
                let role_id = format!("AROA{unique}");
                (
                    "AssumedRole",
                    format!("{role_id}:{session}"),
                    format!("arn:aws:sts::{account_id}:assumed-role/{role}/{session}"),
                    None,
                    Some((role, role_id)),
                )
            }
            _ => {
                let name = p.user_name.clone().unwrap_or_default();
                ("IAMUser", format!("AIDA{unique}"), format!("arn:aws:iam::{account_id}:user/{name}"), Some(name), None)
            }
        };
        Principal {
            access_key_id: p.access_key_id.clone(),
            secret_access_key: p.secret_access_key.clone(),
            principal_type: principal_type.to_string(),
            principal_id,
            arn,
            account_id,
            user_name,
            role_issuer,
            role: p.role,
            // Validated when the config was loaded.
            policy: p.policy.as_deref().and_then(|t| PolicyDocument::parse(t).ok()),
        }
    }

    /// The caller as CloudTrail writes `userIdentity`.
    pub fn user_identity(&self) -> UserIdentity {
        let session_context = self.role_issuer.as_ref().map(|(role, role_id)| SessionContext {
            session_issuer: Some(SessionIssuer {
                issuer_type: Some("Role".into()),
                principal_id: Some(role_id.clone()),
                arn: Some(format!("arn:aws:iam::{}:role/{role}", self.account_id)),
                account_id: Some(self.account_id.clone()),
                user_name: Some(role.clone()),
                ..Default::default()
            }),
            attributes: Some(SessionAttributes { mfa_authenticated: Some("false".into()), ..Default::default() }),
            ..Default::default()
        });
        UserIdentity {
            identity_type: Some(self.principal_type.clone()),
            principal_id: Some(self.principal_id.clone()),
            arn: Some(self.arn.clone()),
            account_id: Some(self.account_id.clone()),
            access_key_id: Some(self.access_key_id.clone()),
            user_name: self.user_name.clone(),
            session_context,
            ..Default::default()
        }
    }

    /// Decides whether this principal may call `action` (`service:Operation`, e.g. `cloudtrail:CreateTrail`).
    pub fn authorize(&self, action: &str) -> Decision {
        let denied = |why: &str| Decision::Deny {
            message: format!("User: {} is not authorized to perform: {action} {why}", self.arn),
        };
        if !role_allows(self.role, action) {
            return denied(&format!("because its role '{}' does not allow it", role_name(self.role)));
        }
        match &self.policy {
            None => Decision::Allow,
            Some(doc) => match doc.evaluate(action) {
                Effect::Allow => Decision::Allow,
                Effect::Deny => denied("with an explicit deny in an identity-based policy"),
                Effect::NoMatch => denied(&format!("because no identity-based policy allows the {action} action")),
            },
        }
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Writer => "writer",
        Role::Auditor => "auditor",
    }
}

/// Hard-coded role ceilings: writers ingest, auditors read (the event history and, through the S3 read API,
/// the delivered log files and digests). Writers may not read the buckets: a delivered log file holds every
/// event of its trail, which a writer cannot look up either.
fn role_allows(role: Role, action: &str) -> bool {
    match role {
        Role::Admin => true,
        Role::Writer => {
            action.eq_ignore_ascii_case("opentrail:PutEvents")
                || action.eq_ignore_ascii_case("cloudtrail-data:PutAuditEvents")
        }
        Role::Auditor => {
            let Some((service, op)) = action.split_once(':') else { return false };
            match service {
                "cloudtrail" | "opentrail" => is_read_only_operation(op),
                "s3" => S3_READ_ACTIONS.iter().any(|a| a.eq_ignore_ascii_case(op)),
                _ => false,
            }
        }
    }
}

/// The S3 read API's actions (`s3:<action>`): what an auditor may do to the buckets.
pub const S3_READ_ACTIONS: [&str; 4] = ["GetObject", "ListBucket", "GetBucketLocation", "ListAllMyBuckets"];

/// CloudTrail's read-only calls: what auditors may do, and what `readOnly` says in audit records.
pub fn is_read_only_operation(op: &str) -> bool {
    ["Lookup", "Get", "Describe", "List"].iter().any(|p| op.starts_with(p))
}

/// A deterministic 17-character id in IAM's unique-id alphabet, derived from the access key.
fn stable_id(seed: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in seed.bytes() {
        h ^= b as u128;
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    (0..17).map(|i| ALPHABET[((h >> (i * 5)) & 31) as usize] as char).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The message is AWS-shaped: `User: <arn> is not authorized to perform: <action> …`.
    Deny {
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
    NoMatch,
}

#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    not_actions: Vec<String>,
}

/// An IAM-style identity policy: `{"Statement": [{"Effect": "Allow"|"Deny", "Action": "x" | ["x", …]}]}`.
/// `NotAction` is supported; `Resource` and `Condition` are accepted and not evaluated (every
/// opentrail resource belongs to the one account).
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

impl PolicyDocument {
    pub fn parse(text: &str) -> Result<PolicyDocument, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("policy is not valid JSON: {e}"))?;
        let stmts = match doc.get("Statement") {
            Some(Value::Array(a)) => a.clone(),
            Some(obj @ Value::Object(_)) => vec![obj.clone()],
            _ => return Err("policy needs a 'Statement' object or list".into()),
        };
        let strings = |v: Option<&Value>, field: &str| -> Result<Vec<String>, String> {
            match v {
                None => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string).ok_or_else(|| format!("'{field}' entries must be strings")))
                    .collect(),
                Some(_) => Err(format!("'{field}' must be a string or a list of strings")),
            }
        };
        let mut statements = Vec::new();
        for (i, s) in stmts.iter().enumerate() {
            let allow = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => return Err(format!("Statement[{i}].Effect must be \"Allow\" or \"Deny\"")),
            };
            let actions = strings(s.get("Action"), "Action")?;
            let not_actions = strings(s.get("NotAction"), "NotAction")?;
            if actions.is_empty() == not_actions.is_empty() {
                return Err(format!("Statement[{i}] needs exactly one of 'Action' or 'NotAction'"));
            }
            statements.push(Statement { allow, actions, not_actions });
        }
        Ok(PolicyDocument { statements })
    }

    fn evaluate(&self, action: &str) -> Effect {
        let mut allowed = false;
        for s in &self.statements {
            let hit = if s.not_actions.is_empty() {
                s.actions.iter().any(|p| wildcard_match(p, action))
            } else {
                !s.not_actions.iter().any(|p| wildcard_match(p, action))
            };
            if hit && !s.allow {
                return Effect::Deny;
            }
            allowed |= hit && s.allow;
        }
        if allowed { Effect::Allow } else { Effect::NoMatch }
    }
}

/// IAM action matching: case-insensitive, `*` any run, `?` any one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Every configured principal, by access key.
#[derive(Debug, Clone, Default)]
pub struct Principals {
    by_key: HashMap<String, Principal>,
}

impl Principals {
    pub fn from_config(cfg: &Config) -> Principals {
        let by_key = cfg
            .principals
            .iter()
            .map(|p| (p.access_key_id.clone(), Principal::from_config(p, &cfg.account_id)))
            .collect();
        Principals { by_key }
    }

    pub fn get(&self, access_key_id: &str) -> Option<&Principal> {
        self.by_key.get(access_key_id)
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, policy: Option<&str>) -> Principal {
        Principal::from_config(
            &PrincipalConfig {
                access_key_id: "AKIAEXAMPLEJOHN00001".into(),
                secret_access_key: "secret-secret-secret".into(),
                user_name: Some("John".into()),
                principal_type: None,
                role_name: None,
                session_name: None,
                role,
                policy: policy.map(str::to_string),
                account_id: None,
            },
            "123456789012",
        )
    }

    #[test]
    fn wildcards_match_like_iam() {
        assert!(wildcard_match("cloudtrail:Lookup*", "cloudtrail:LookupEvents"));
        assert!(wildcard_match("cloudtrail:*Trail", "cloudtrail:CreateTrail"));
        assert!(!wildcard_match("cloudtrail:*Trail", "cloudtrail:GetTrailStatus"));
        assert!(wildcard_match("cloudtrail-data:*", "cloudtrail-data:PutAuditEvents"));
        assert!(wildcard_match("CLOUDTRAIL:get?rail", "cloudtrail:GetTrail"));
        assert!(wildcard_match("*", "anything:AtAll"));
        assert!(!wildcard_match("cloudtrail:Get", "cloudtrail:GetTrail"));
    }

    #[test]
    fn roles_bound_what_a_key_can_do() {
        let writer = principal(Role::Writer, None);
        assert_eq!(writer.authorize("opentrail:PutEvents"), Decision::Allow);
        assert!(matches!(writer.authorize("cloudtrail:LookupEvents"), Decision::Deny { .. }));
        let auditor = principal(Role::Auditor, None);
        assert_eq!(auditor.authorize("cloudtrail:LookupEvents"), Decision::Allow);
        assert_eq!(auditor.authorize("cloudtrail:DescribeTrails"), Decision::Allow);
        let Decision::Deny { message } = auditor.authorize("cloudtrail:CreateTrail") else { panic!("must deny") };
        assert!(message.starts_with(
            "User: arn:aws:iam::123456789012:user/John is not authorized to perform: cloudtrail:CreateTrail"
        ));
        assert!(matches!(auditor.authorize("opentrail:PutEvents"), Decision::Deny { .. }));
        for a in ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:ListAllMyBuckets"] {
            assert_eq!(auditor.authorize(a), Decision::Allow, "{a}");
            assert!(matches!(writer.authorize(a), Decision::Deny { .. }), "{a}");
        }
        assert!(matches!(auditor.authorize("s3:PutObject"), Decision::Deny { .. }));
        assert!(matches!(auditor.authorize("s3:DeleteObject"), Decision::Deny { .. }));
    }

    #[test]
    fn explicit_deny_beats_allow_and_no_match_denies() {
        let p = principal(
            Role::Admin,
            Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudtrail:*"},{"Effect":"Deny","Action":["cloudtrail:*Trail"]}]}"#,
            ),
        );
        assert_eq!(p.authorize("cloudtrail:LookupEvents"), Decision::Allow);
        let Decision::Deny { message } = p.authorize("cloudtrail:DeleteTrail") else { panic!() };
        assert!(message.contains("explicit deny"));
        let Decision::Deny { message } = p.authorize("cloudtrail-data:PutAuditEvents") else { panic!() };
        assert!(message.contains("no identity-based policy allows"));
    }

    #[test]
    fn bad_policies_are_refused_with_the_field() {
        assert!(PolicyDocument::parse("{}").unwrap_err().contains("Statement"));
        assert!(
            PolicyDocument::parse(r#"{"Statement":{"Effect":"Maybe","Action":"*"}}"#).unwrap_err().contains("Effect")
        );
        assert!(PolicyDocument::parse(r#"{"Statement":[{"Effect":"Allow"}]}"#).unwrap_err().contains("Action"));
    }

    #[test]
    fn identities_look_like_cloudtrail_ones() {
        let p = principal(Role::Admin, None);
        let id = serde_json::to_value(p.user_identity()).unwrap();
        assert_eq!(id["type"], "IAMUser");
        assert_eq!(id["userName"], "John");
        assert_eq!(id["arn"], "arn:aws:iam::123456789012:user/John");
        assert!(id["principalId"].as_str().unwrap().starts_with("AIDA"));
    }
}
